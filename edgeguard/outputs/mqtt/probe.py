"""`edgeguard check`'s look at the broker: connect, authenticate and publish one QoS 1 message to the
device's prefix, with a client id of its own (the daemon's may be connected at the same time)."""

from __future__ import annotations

import threading
import time

from ...config import MqttConfig
from .client import Connection


def probe(config: MqttConfig, timeout: float = 10.0) -> tuple[bool, str]:
    """(True, what worked) or (False, why not)."""
    connection = Connection(config, f"edgeguard-{config.device_id}-check", persistent=False)
    acked = threading.Event()
    result: list[tuple[bool, str]] = []
    topic = f"{config.topic_prefix}/check"

    def done(ok: bool, reason: str) -> None:
        result.append((ok, reason))
        acked.set()

    connection.start()
    try:
        deadline = time.monotonic() + timeout
        while not connection.connected.wait(0.05):
            if (
                connection.state.startswith(("refused", "cannot connect", "no MQTT answer"))
                or time.monotonic() > deadline
            ):
                return False, f"{config.broker}: {connection.state}"
        connection.publish(topic, b"edgeguard check", done=done)
        if not acked.wait(timeout):
            return False, f"connected to {config.broker}, but no acknowledgement of a message to {topic}"
        ok, reason = result[0]
        if not ok:
            return (
                False,
                f"connected to {config.broker}, but the broker refused a message to {topic}: {reason}",
            )
        return True, f"connected to {config.broker} as {config.device_id}; a message to {topic} acknowledged"
    finally:
        connection.stop()
