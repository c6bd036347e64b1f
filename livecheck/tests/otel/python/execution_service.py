"""The tutorial's execution stage as an HTTP service instrumented with stock OpenTelemetry, and nothing of LiveCheck.

    POST /execute  {"side": "sell"}  ->  200, and a span `execute order` with the attribute `order.side`

A test's context arrives in the request's W3C `baggage` header (members `livecheck.test.*`); the WSGI middleware
extracts it, the `BaggageSpanProcessor` copies it onto every span of the request, and the OTLP/HTTP exporter
(protobuf) sends the spans to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` -- a LiveCheck instance's `/v1/traces`.

    --change-side   the span says the other side (a stage with a bug)
    --drop          answers 200 but makes no `execute order` span (a stage that lost the order)

It listens on a free port and prints `listening on PORT`; it stops when its standard input closes (so it ends
with the process that started it) and on SIGTERM. Used by livecheck/tests/otel_services.rs.
"""

import argparse
import json
import signal
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

OTHER_SIDE = {"sell": "buy", "buy": "sell"}


def tracing():
    provider = TracerProvider(resource=Resource.create({"service.name": "execution"}))
    # Every baggage member (the test's context among them) becomes an attribute of every span of the request.
    provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    # The endpoint comes from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; each span is exported when it ends.
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def application(change_side, drop):
    tracer = trace.get_tracer("execution_service")

    def app(environ, start_response):
        if environ["PATH_INFO"] != "/execute" or environ["REQUEST_METHOD"] != "POST":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            side = json.loads(environ["wsgi.input"].read(length))["side"]
        except (ValueError, KeyError, TypeError) as error:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"expected {{\"side\": ...}}: {error}\n".encode()]
        if change_side:
            side = OTHER_SIDE.get(side, side + "?")
        if not drop:
            with tracer.start_as_current_span("execute order") as span:
                span.set_attribute("order.side", side)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"executed": not drop}).encode()]

    return app


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--change-side", action="store_true", help="the span says the other side")
    parser.add_argument("--drop", action="store_true", help="make no `execute order` span")
    options = parser.parse_args()

    provider = tracing()
    app = OpenTelemetryMiddleware(application(options.change_side, options.drop))
    server = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)

    def stop(*_):
        # serve_forever() returns once shutdown() is called from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    def until_stdin_closes():
        while sys.stdin.buffer.read(4096):
            pass
        stop()

    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=until_stdin_closes, daemon=True).start()
    print(f"listening on {server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        provider.shutdown()


if __name__ == "__main__":
    main()
