"""Decodes LiveCheck messages written by the Rust library with the Python implementation's own models.

Reads one JSON value a line on stdin; exits non-zero on the first one faust cannot decode into its model.
Prints "decoded N" at the end.
"""
import datetime
import json
import sys

from faust.livecheck.models import SignalEvent, TestExecution, TestReport
from faust.models.base import registry


def check_execution(e):
    assert isinstance(e, TestExecution), type(e)
    assert isinstance(e.timestamp, datetime.datetime) and e.timestamp.tzinfo is not None, e.timestamp
    assert isinstance(e.expires, datetime.datetime) and e.expires > e.timestamp, e.expires
    assert isinstance(e.test_args, list) and isinstance(e.test_kwargs, dict)


count = 0
for line in sys.stdin:
    if not line.strip():
        continue
    data = json.loads(line)
    model = registry[data["__faust"]["ns"]]
    value = model.from_data(data)
    if isinstance(value, TestExecution):
        check_execution(value)
    elif isinstance(value, SignalEvent):
        assert value.signal_name and value.case_name and value.key, value
    elif isinstance(value, TestReport):
        assert value.state in ("PASS", "FAIL", "ERROR", "TIMEOUT", "STALL", "SKIP", "INIT"), value.state
        if value.test is not None:
            check_execution(value.test)
        assert isinstance(value.signal_latency, dict)
    else:
        raise SystemExit(f"unexpected model {model}")
    count += 1
print(f"decoded {count}")
