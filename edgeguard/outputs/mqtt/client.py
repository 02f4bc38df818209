"""The device's connection to the broker (paho-mqtt 2, MQTT 5), made and kept in the background.

A fixed client id from the device id and a persistent session (clean start
off, a session expiry), so the broker keeps what it owes the device across a
reconnect; QoS 1 for what is published; the last will `offline` on the
availability topic, and `online` (retained) on every connect.  paho's loop
thread connects, reconnects with a backoff of 1 s doubling to 2 minutes, and
re-sends what the broker had not acknowledged; nothing here waits for the
network on the caller's thread.  Why the broker cannot be reached, refuses
the device, answers something that is not MQTT or drops the connection is
logged in one line, at most once a minute per reason.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ...common.ratelimit import EveryMinute
from ...config import MqttConfig

log = logging.getLogger(__name__)

# done(ok, reason): the broker acknowledged a message (ok) or refused it (not ok; reason says why)
Done = Callable[[bool, str], None]

SESSION_EXPIRY = 7 * 86400  # seconds the broker keeps the session of a device that is away
RECONNECT_MIN, RECONNECT_MAX = 1, 120  # seconds, doubling
MAX_INFLIGHT = 100  # messages sent and not yet acknowledged; more wait in paho's queue
ONLINE, OFFLINE = "online", "offline"


class Connection:
    """One paho client: `start()` connects in the background, `publish()` never waits, `stop()` says
    offline.  `state` is what `edgeguard check`, the status and the dashboard show."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        availability: str | None = None,
        on_connected: Callable[[], None] | None = None,
        persistent: bool = True,
        manual_ack: bool = False,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.availability = availability
        self.on_connected = on_connected
        self.persistent = persistent
        self.state = "not started"
        self.connected = threading.Event()
        self._logged = EveryMinute()
        self.client = _client(config, client_id, manual_ack)
        if availability:
            self.client.will_set(availability, OFFLINE, qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._waiting: dict[int, Done | None] = {}  # mid -> what to call on its acknowledgement
        self._early: dict[int, tuple[bool, str]] = {}  # acknowledged before publish() had returned
        self._refused = False  # this attempt's CONNACK refused the device (paho then also disconnects)
        self._unanswered = 0  # attempts in a row closed before any CONNACK

    def start(self) -> None:
        """Connect and keep connected, on paho's thread."""
        properties = None
        if self.persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY
        self.state = "connecting"
        self.client.connect_async(
            self.config.host,
            self.config.port,
            self.config.keepalive,
            clean_start=not self.persistent,
            properties=properties,
        )
        self.client.loop_start()

    def publish(
        self, topic: str, payload: str | bytes, retain: bool = False, done: Done | None = None
    ) -> mqtt.MQTTMessageInfo:
        """Queue a QoS 1 message (sent now if connected, else once connected); `done` is called on the
        broker's acknowledgement, on paho's thread or (acknowledged already) on this one.  OSError if paho
        cannot queue it."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise OSError(f"mqtt: cannot queue a message for {topic}: {mqtt.error_string(info.rc)}")
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._waiting[info.mid] = done
        if early is not None and done is not None:
            done(*early)
        return info

    def stop(self, timeout: float = 2.0) -> None:
        """Say offline (when connected), disconnect and stop the loop thread."""
        if self.connected.is_set() and self.availability:
            info = self.publish(self.availability, OFFLINE, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # the connection went away meanwhile: the will says it
                pass
        self.state = "stopped"
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        self._unanswered = 0  # a CONNACK came: the broker answers
        if reason.is_failure:
            self._refused = True
            self.state = f"refused: {reason.getName()}"
            if self._logged.due(f"refused {reason}"):
                log.error(
                    "mqtt: broker %s refused the connection of client id %s: %s%s",
                    self.config.broker,
                    self.client_id,
                    reason.getName(),
                    _hint(reason),
                )
            return
        self.state = f"connected to {self.config.broker}"
        self.connected.set()
        log.info("mqtt: connected to %s (session %s)", self.config.broker, _session(flags))
        if self.availability:
            self.publish(self.availability, ONLINE, retain=True)
        if self.on_connected is not None:
            self.on_connected()

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _p: Any
    ) -> None:
        """PUBACK: paho calls this holding its message lock, so publish() may not have returned yet."""
        result = (not reason.is_failure, reason.getName())
        with self._lock:
            if mid not in self._waiting:
                self._early[mid] = result
                return
            done = self._waiting.pop(mid)
        if done is not None:
            done(*result)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        error = sys.exc_info()[1]  # paho calls this from its `except OSError`
        reason = _describe(error)
        self.state = f"cannot connect: {reason}"
        if self._logged.due(f"fail {type(error).__name__}"):
            log.error("mqtt: cannot connect to %s: %s; retrying", self.config.broker, reason)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        refused, self._refused = self._refused, False
        if self.state == "stopped" or refused:
            return
        if not was_connected:
            self._not_accepted(reason)
            return
        self.state = f"disconnected: {reason.getName()}"
        if self._logged.due(f"lost {reason}"):
            log.warning(
                "mqtt: lost the connection to %s (%s); reconnecting", self.config.broker, reason.getName()
            )

    def _not_accepted(self, reason: ReasonCode) -> None:
        """The connection closed before a CONNACK came: what answered is not an MQTT 5 broker (it sent
        something else, or nothing within the keepalive), or a TLS port was spoken to in plain text.

        Said from the second time in a row: once alone can be a broker's refusal lost to a reset (it
        closed on our first messages unread, and the reset discarded its CONNACK); the next attempt then
        reads the refusal, which says what is wrong."""
        self.state = f"no MQTT answer: {reason.getName()}"
        self._unanswered += 1
        if self._unanswered < 2:
            return
        if self._logged.due(f"not accepted {reason}"):
            log.error(
                "mqtt: %s closed the connection without accepting the device (%s): is an MQTT 5 broker "
                "listening on that port, and is [mqtt] tls right?; retrying",
                self.config.broker,
                reason.getName(),
            )


def _client(config: MqttConfig, client_id: str, manual_ack: bool = False) -> mqtt.Client:
    """paho's client; with `manual_ack` a received QoS 1 message is acknowledged only by `client.ack`."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    if config.username:
        client.username_pw_set(config.username, config.password or None)
    if config.tls:
        client.tls_set(
            ca_certs=config.tls_ca or None,
            certfile=config.tls_cert or None,
            keyfile=config.tls_key or None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return client


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the broker's certificate is not trusted ({error.verify_message}); check [mqtt] tls_ca"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or error}); is the port a TLS port, and [mqtt] tls right?"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _hint(reason: ReasonCode) -> str:
    name = reason.getName()
    if name in ("Bad user name or password", "Not authorized"):
        return " (check [mqtt] username and the password)"
    if name == "Client identifier not valid":
        return " (the broker does not take this device id, or another client uses it: check [mqtt] device_id)"
    return ""


def _session(flags: Any) -> str:
    return "resumed" if getattr(flags, "session_present", False) else "new"
