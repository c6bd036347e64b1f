"""A Python Faust service for tests/faust_on_kafka.rs: every second it samples an order into a test of the case
`faust_service.test_order` (probability 1) and sends the stage's signal, `placed`, carrying the side.

Run with the broker in LIVECHECK_TEST_BROKER (host:port): `python -m faust -A faust_service worker`.
"""
import os

import faust.livecheck

from livecheck_app import livecheck_app

app, livecheck = livecheck_app("faust_service")


@livecheck.case(probability=1.0, warn_stalled_after=3600.0)
class test_order(faust.livecheck.Case):
    placed: faust.livecheck.Signal[dict]

    async def run(self, side: str) -> None:
        pass


@app.timer(interval=1.0)
async def place_an_order():
    async with test_order.maybe_trigger(side=os.environ.get("LIVECHECK_TEST_SIDE", "sell")) as test:
        if test is not None:
            await test_order.placed.send(value={"side": "sell"})
