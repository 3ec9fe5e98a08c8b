"""librdkafka's mock cluster: a Kafka protocol endpoint on 127.0.0.1 for tests and the demo.

No broker can be installed on these machines; the mock lives inside one client handle (an
AdminClient with `test.mock.num.brokers`) and serves every client that connects to its TCP
address, in this process or another, for as long as the handle lives. It auto-creates topics on
first produce (CreateTopics needs a controller it does not emulate). Production uses a real broker
with the same client configuration keys.
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient


class MockCluster:
    """Keep the instance alive as long as the cluster should run."""

    def __init__(self, brokers: int = 1) -> None:
        self._admin = AdminClient({"test.mock.num.brokers": brokers, "log_level": 3})
        meta = self._admin.list_topics(timeout=10)
        broker = meta.brokers[min(meta.brokers)]
        self.bootstrap_servers = f"{broker.host}:{broker.port}"
