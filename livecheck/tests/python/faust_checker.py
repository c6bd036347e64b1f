"""A Python Faust LiveCheck instance for tests/faust_on_kafka.rs: runs the case `faust_checker.test_order` for
executions triggered by Rust services — waits for `placed` and asserts the order kept its side.

Run with the broker in LIVECHECK_TEST_BROKER (host:port): `python -m faust -A faust_checker livecheck`.
"""
import faust.livecheck

from livecheck_app import livecheck_app

app, livecheck = livecheck_app("faust_checker")


@livecheck.case(probability=1.0, warn_stalled_after=3600.0)
class test_order(faust.livecheck.Case):
    placed: faust.livecheck.Signal[dict]

    async def run(self, side: str) -> None:
        order = await self.placed.wait(timeout=20.0)
        assert order["side"] == side, f"the order kept its side: {order['side']} != {side}"
