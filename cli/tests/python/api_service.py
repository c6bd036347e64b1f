"""A service in Python that knows LiveCheck only by its HTTP API (stdlib only).

Usage: api_service.py BASE_URL CASE COUNT [--wrong N]
For each of COUNT payments: POST /api/tests, then POST /api/signals for `authorized` (the amount; a wrong one for
the first N payments) and `captured`, forwarding the headers the first answer gave.
Prints one line per test: `ID`. The token, when one is set, comes from LIVECHECK_WEB_TOKEN; with
SIGNALS_WITHOUT_TOKEN set, signals carry only the test's (signed) headers.
"""

import json
import os
import sys
import urllib.request


def post(url, body, headers):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read() or b"null")


def main():
    base, case, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    wrong = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--wrong" else 0
    token = os.environ.get("LIVECHECK_WEB_TOKEN")
    auth = {"Authorization": "Bearer " + token} if token else {}
    for n in range(count):
        amount = 100 + n
        status, test = post(base + "/api/tests", {"case": case, "args": {"amount": amount}}, auth)
        assert status == 201, (status, test)
        # The test's headers go with every call about it (as they would with the request under test); with
        # signing on they alone let a signal in, without it the token does.
        forward = dict(test["headers"], **({} if os.environ.get("SIGNALS_WITHOUT_TOKEN") else auth))
        paid = amount + 1 if n < wrong else amount
        for signal, value in (("authorized", {"amount": paid, "payment": test["id"]}), ("captured", None)):
            status, _ = post(base + "/api/signals", {"test_id": test["id"], "signal": signal, "value": value}, forward)
            assert status == 202, status
        print(test["id"], flush=True)


if __name__ == "__main__":
    main()
