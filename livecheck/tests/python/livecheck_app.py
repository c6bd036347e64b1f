"""The Faust app the Python sides of tests/faust_on_kafka.rs share: on the broker in LIVECHECK_TEST_BROKER
(host:port), 8 partitions per topic as the Rust side creates them, no web server, with its LiveCheck."""
import os

import faust


def livecheck_app(name: str):
    """The app named `name` and its LiveCheck."""
    app = faust.App(
        name,
        broker="kafka://" + os.environ["LIVECHECK_TEST_BROKER"],
        store="memory://",
        topic_partitions=8,
        web_enabled=False,
    )
    return app, app.LiveCheck()
