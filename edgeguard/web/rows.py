"""The one renderer of an event row (templates/event_row.html): the overview and the detection log include
it, and the live updates (web/streams.py) push the same fragment, rendered for the viewer of each stream, so
that a row that arrives live is the row a reload shows."""

from __future__ import annotations

from flask import render_template

from .request import dashboard


def people_choices() -> list[tuple[str, str]]:
    """The watchlist's people as (Id, name), by name: the choices of a row's "This is..." correction."""
    watchlist = dashboard().watchlist()
    return (
        sorted(((p.id, p.name) for p in watchlist.people.values()), key=lambda p: p[1]) if watchlist else []
    )


def event_row(event: dict, review: bool) -> str:
    """One row for `event` (web.events.event_json), for the logged-in user; with `review`, the detection log's
    review cell (who reviewed it, or the buttons an admin may use)."""
    board = dashboard()
    seq = event.get("seq")
    reviewed = board.users.reviewed([seq]) if review and seq is not None else {}
    people = people_choices() if review else []
    return render_template("event_row.html", e=event, review=review, reviewed=reviewed, people=people)
