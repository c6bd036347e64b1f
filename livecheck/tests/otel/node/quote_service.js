// The quote stage as an HTTP service instrumented with stock OpenTelemetry, and nothing of LiveCheck.
//
//     GET /quote?side=sell  ->  a span `quote` (attribute `quote.side`), inside which it calls the execution
//                               service's POST /execute {"side": "sell"} (EXECUTION_URL), then answers 200
//
// A test's context arrives in the W3C `baggage` header (members `livecheck.test.*`). The http instrumentation
// extracts it on the way in and injects `traceparent` and `baggage` into the call onward, so the next service's
// spans carry the test too; the BaggageSpanProcessor copies it onto every span here, and the OTLP/HTTP exporter
// (JSON) sends the spans to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT -- a LiveCheck instance's /v1/traces.
//
// It listens on a free port and prints `listening on PORT`; it stops when its standard input closes (so it ends
// with the process that started it) and on SIGTERM. Used by livecheck/tests/otel_services.rs.
'use strict';

const { trace, SpanStatusCode } = require('@opentelemetry/api');
const { ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor } = require('@opentelemetry/baggage-span-processor');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { NodeTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-node');

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'quote' }),
  spanProcessors: [
    // Every baggage member (the test's context among them) becomes an attribute of every span of the request.
    new BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS),
    // The endpoint comes from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; each span is exported when it ends.
    new SimpleSpanProcessor(new OTLPTraceExporter()),
  ],
});
// The global context manager and the W3C propagators (traceparent and baggage).
provider.register();
registerInstrumentations({ instrumentations: [new HttpInstrumentation()] });

// Required after the instrumentation is registered, so that it is the instrumented module.
const http = require('http');

const executionUrl = process.env.EXECUTION_URL;
if (!executionUrl) {
  console.error('EXECUTION_URL (the execution service\'s POST /execute) is not set');
  process.exit(2);
}
const tracer = trace.getTracer('quote_service');

/** POSTs `body` (JSON) to `url`; resolves with the status code. */
function post(url, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const request = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode));
      },
    );
    request.on('error', reject);
    request.end(data);
  });
}

const server = http.createServer((request, response) => {
  const url = new URL(request.url, 'http://localhost');
  if (request.method !== 'GET' || url.pathname !== '/quote') {
    response.writeHead(404).end('not found\n');
    return;
  }
  const side = url.searchParams.get('side') || 'buy';
  tracer.startActiveSpan('quote', { attributes: { 'quote.side': side } }, async (span) => {
    try {
      const status = await post(executionUrl, { side });
      span.setAttribute('execution.status', status);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ side, executed: status }));
    } catch (error) {
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
      response.writeHead(502).end(`execution service: ${error}\n`);
    } finally {
      span.end();
    }
  });
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close();
  server.closeAllConnections();
  provider.shutdown().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();

server.listen(0, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});
