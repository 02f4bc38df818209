"""Live updates on the hub's event log: events stored by any hub process (read from the shared database) reach
the open pages as their rows, with the page's filters, each once, also when stored a little late."""

from __future__ import annotations

import threading
import time

from hub_fleet import START, payload
from test_hub_web import HubWeb

from edgeguard.hub.live import SKEW_SECONDS, LiveRows
from edgeguard.hub.store import event_row


def store_events(hub: HubWeb, device: str, seqs: range, received: float) -> list[str]:
    rows = [event_row(payload(device, seq), received) for seq in seqs]
    hub.store.add_events(rows)
    return [row["event_id"] for row in rows]


def test_rows_stored_since_reach_the_open_streams_once(tmp_path):
    hub = HubWeb(tmp_path / "hub")
    now = [START + 10_000.0]
    live = LiveRows(hub.store, hub.dashboard.events, clock=lambda: now[0])
    try:
        assert live.look() == 0  # nobody watches: the database is not read
        stop = threading.Event()
        got: list[str] = []
        stream = hub.dashboard.events.stream("victor", stop, lambda row: row["event_id"])
        reader = threading.Thread(target=lambda: got.extend(part for part in stream if "event: row" in part))
        reader.start()
        first = store_events(hub, "door-1", range(1, 4), now[0] + 1)
        assert live.look() == 3 and live.look() == 0
        late = store_events(hub, "door-2", range(1, 3), now[0] - SKEW_SECONDS / 2)  # an earlier clock
        assert live.look() == 2
        store_events(hub, "door-3", range(1, 2), now[0] - SKEW_SECONDS * 3)  # long before the page opened
        assert live.look() == 0
        stop.set()
        hub.dashboard.events.close()
        reader.join(5)
        assert [part.split("data: ")[1].strip() for part in got] == first + late
    finally:
        hub.stop()


def test_the_event_log_page_is_live_with_its_filters(tmp_path):
    hub = HubWeb(tmp_path / "hub")
    live = LiveRows(hub.store, hub.dashboard.events)
    live.start()
    try:
        http = hub.login("victor")
        assert 'id="live-state"' in http.get(f"{hub.url}/events?device=door-9").text
        with http.get(f"{hub.url}/events/live?device=door-9", stream=True, timeout=20) as answer:
            assert answer.headers["Content-Type"].startswith("text/event-stream")
            lines = answer.iter_lines(decode_unicode=True)
            assert next(lines).startswith("retry:")
            store_events(hub, "door-8", range(1, 3), time.time())  # another device: filtered out
            [wanted] = store_events(hub, "door-9", range(7, 8), time.time())
            data = []
            for line in lines:
                if line.startswith("data: "):
                    data.append(line)
                if "</tr>" in line:
                    break
        row = "\n".join(data)
        assert f'data-id="{wanted}"' in row and "door-9" in row and "door-8" not in row
    finally:
        live.stop()
        hub.stop()
