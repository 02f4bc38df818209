"""The `edgeguard` command: argument parsing and the small glue of each subcommand."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

from . import __version__
from .alerts.outbox import Message, Outbox, read_messages
from .alerts.sender import Sender, TwilioTransport
from .alerts.wording import trial_body
from .client.push import PushOptions, run_push
from .common.phone import mask_number
from .config import Config, ConfigError, example_config, load_config
from .events.event import EVENT_TYPES
from .faces.engine import FaceEngine
from .faces.photos import PhotoError, load_photo
from .outputs.mqtt.consumer import DEFAULT_FILTER, event_line, follow
from .review.capture_enrol import enrol_from_capture
from .review.feedback import FeedbackError, FeedbackResult, is_person, not_person
from .review.search import face_to_search, search_events
from .service.erasure import ErasureError, forget_capture, forget_person
from .service.logs import setup_logging
from .service.privacy_migrate import MigrateError, migrate
from .store.audit import audit, command_user, read_rows, verify
from .store.event_log import EventReader, parse_since, read_events
from .store.face_captures import CaptureFolder
from .store.face_index import FaceIndex, SearchFilter
from .store.sqlite import DamagedDatabase
from .watchlist.analyze import analyze_photo
from .watchlist.build import build_watchlist, open_cache
from .watchlist.enrol import EnrolError, EnrolResult, enrol
from .web.users import UserError, open_users

log = logging.getLogger("edgeguard")

EX_CONFIG = 78  # sysexits.h: configuration error


def main(argv: list[str] | None = None) -> int:
    args = _parse(_parser(), argv)
    if args.command == "example-config":
        sys.stdout.write(example_config())
        return 0
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if args.command == "check":
            print(f"[FAIL] configuration: {exc}")
        print(f"edgeguard: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    setup_logging("WARNING" if getattr(args, "json", False) else config.logging.level)
    try:
        return args.handler(config, args)
    except BrokenPipeError:  # `edgeguard events | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except DamagedDatabase as exc:
        print(f"edgeguard {args.command}: {exc}", file=sys.stderr)
        return 1
    except (
        OSError,
        sqlite3.Error,
    ) as exc:  # a file that cannot be read or written: say which, not a traceback
        print(f"edgeguard {args.command}: {exc}", file=sys.stderr)
        return 1


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The arguments; `enroll ID --name N PHOTO` too (argparse alone takes no photo after an option)."""
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "enroll" and not any(e.startswith("-") for e in extra):
        args.photos += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeguard", description="On-camera face alert daemon.")
    parser.add_argument("--version", action="version", version=f"edgeguard {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML config (default: $EDGEGUARD_CONFIG, ./edgeguard.toml, /etc/edgeguard/edgeguard.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    analyze = sub.add_parser("analyze", help="recognise the faces in still images against the watchlist")
    analyze.add_argument("images", nargs="+", metavar="IMAGE")
    analyze.add_argument("--json", action="store_true", help="one JSON object per image and line")
    analyze.set_defaults(handler=cmd_analyze)

    enroll = sub.add_parser("enroll", help="add photos of a person to the watchlist, or --check it")
    enroll.add_argument("id", nargs="?", metavar="ID")
    enroll.add_argument("photos", nargs="*", metavar="PHOTO")
    enroll.add_argument("--name", help="the person's name (needed for a new Id)")
    enroll.add_argument("--category", help="e.g. staff, missing, wanted, vip")
    enroll.add_argument(
        "--check", action="store_true", help="list the photos and CSV rows that cannot be used"
    )
    enroll.add_argument(
        "--from-capture", metavar="FILE", help="enrol the face of a reviewed unknown-face capture"
    )
    enroll.set_defaults(handler=cmd_enroll)

    feedback = sub.add_parser(
        "feedback",
        help="correct a wrong name: an event's face is not the person it "
        "named (--not-person), or is a given person (--is ID)",
    )
    feedback.add_argument(
        "event", type=int, metavar="EVENT_ID", help="the event's number (first column of edgeguard events)"
    )
    correction = feedback.add_mutually_exclusive_group(required=True)
    correction.add_argument(
        "--not-person",
        action="store_true",
        help="a known_face event named the wrong person: never name this face as them again",
    )
    correction.add_argument(
        "--is",
        dest="is_id",
        metavar="ID",
        help="the face is watchlist Id ID: its capture becomes a photo of them",
    )
    feedback.set_defaults(handler=cmd_feedback)

    forget = sub.add_parser(
        "forget",
        help="erase a watchlist person (photos, encodings, captures, their events' details, messages, row) "
        "or, with --capture, one unknown visitor's capture",
    )
    what = forget.add_mutually_exclusive_group(required=True)
    what.add_argument("id", nargs="?", metavar="ID", help="the watchlist Id to erase")
    what.add_argument("--capture", metavar="FILE", help="a capture's file name (or id) to erase")
    forget.set_defaults(handler=cmd_forget)

    privacy = sub.add_parser("privacy", help="data protection at rest")
    privacy_sub = privacy.add_subparsers(dest="action", required=True)
    privacy_sub.add_parser(
        "migrate",
        help="seal a plain site in place with the data key (captures, encoding cache, event log, outbox); "
        "stop the daemon first; safe to interrupt and run again",
    )
    privacy.set_defaults(handler=cmd_privacy)

    audit = sub.add_parser("audit", help="show the audit log (who changed what), or --verify its chain")
    audit.add_argument("--verify", action="store_true", help="check that no row was changed or removed")
    audit.add_argument("--limit", type=int, default=50, help="the newest N rows (default 50; 0: all)")
    audit.set_defaults(handler=cmd_audit)

    run = sub.add_parser("run", help="run the daemon: camera in, events out")
    run.add_argument(
        "--source",
        help="run only one camera (--camera, else the first) with this source instead: "
        "an index, /dev/videoN, a URL or a video file",
    )
    run.add_argument("--camera", metavar="NAME", help="run only this configured camera")
    run.add_argument("--realtime", action="store_true", default=None, help="play a video file at its own fps")
    run.set_defaults(handler=cmd_run)

    hub = sub.add_parser(
        "hub", help="run the fleet hub: every device's events from the [mqtt] broker, stored once ([hub])"
    )
    hub.add_argument(
        "--token",
        metavar="DEVICE",
        help="print a new watchlist token for DEVICE and the hub's public key, then exit",
    )
    hub.add_argument("--group", default="", help="with --token: the device's group (the people meant for it)")
    hub.set_defaults(handler=cmd_hub)

    events = sub.add_parser("events", help="list events from the event log")
    events.add_argument(
        "--since", help="an ISO time (2026-11-22T14:00) or a span back from now (30m, 2h, 7d)"
    )
    events.add_argument("--type", action="append", choices=EVENT_TYPES, help="only this type (repeatable)")
    events.add_argument("--limit", type=int, help="at most this many")
    events.add_argument("--json", action="store_true", help="one JSON object per event and line")
    events.add_argument(
        "--follow",
        action="store_true",
        help="with --mqtt: keep printing events as they arrive, until stopped",
    )
    events.add_argument(
        "--mqtt",
        action="store_true",
        help="read the events of every device from the [mqtt] broker instead of this device's event log",
    )
    events.add_argument(
        "--topic", default=DEFAULT_FILTER, help=f"--mqtt: the topic filter (default {DEFAULT_FILTER})"
    )
    events.add_argument(
        "--group", help="--mqtt: share the events with the other consumers of this group ($share/GROUP/...)"
    )
    events.set_defaults(handler=cmd_events)

    search = sub.add_parser("search", help="the past events of the person in a photo, nearest first")
    search.add_argument("photo", metavar="PHOTO", help="a photo of one person")
    search.add_argument(
        "--since", help="an ISO time (2026-11-22T14:00) or a span back from now (30m, 2h, 7d)"
    )
    search.add_argument("--camera", help="only events of this camera")
    search.add_argument("--location", help="only events at this location")
    search.add_argument(
        "--json", action="store_true", help="one JSON object per event and line, as `events --json`"
    )
    search.set_defaults(handler=cmd_search)

    test_alert = sub.add_parser("test-alert", help="send one message end to end and report what happened")
    test_alert.add_argument(
        "--to", metavar="NUMBER", help="the recipient (default: every number in [[alerts.route]])"
    )
    test_alert.set_defaults(handler=cmd_test_alert)

    alerts = sub.add_parser("alerts", help="show the alert outbox")
    alerts.add_argument("--pending", action="store_true", help="only messages still to be sent")
    alerts.add_argument("--failed", action="store_true", help="only messages that failed for good")
    alerts.add_argument("--limit", type=int, help="at most this many")
    alerts.add_argument("--json", action="store_true", help="one JSON object per message and line")
    alerts.set_defaults(handler=cmd_alerts)

    push = sub.add_parser(
        "push", help="send a local camera's frames to a daemon's push camera (source = \"push\")"
    )
    push.add_argument("--url", required=True, help="the daemon's dashboard, e.g. http://192.168.1.20:8780")
    push.add_argument(
        "--camera", required=True, metavar="NAME", help="the push camera's name in the daemon's config"
    )
    push.add_argument(
        "--token-file",
        required=True,
        type=Path,
        metavar="FILE",
        help="the camera's token (the daemon's push_tokens/NAME.token); not readable by others",
    )
    push.add_argument(
        "--source",
        default="0",
        help="what to read, as for run: an index, /dev/videoN, a URL or a "
        "video file (played in real time; the end of the file ends the push, unless --loop)",
    )
    push.add_argument("--loop", action="store_true", help="start a video file again at its end")
    push.add_argument(
        "--width", type=int, default=640, help="frames wider than this are shrunk to it (default 640)"
    )
    push.add_argument("--quality", type=int, default=80, help="JPEG quality, 1-100 (default 80)")
    push.add_argument("--fps", type=float, default=5.0, help="at most this many frames a second (default 5)")
    push.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="a config for its [logging] level (as edgeguard --config)",
    )
    push.set_defaults(handler=cmd_push)

    check = sub.add_parser(
        "check", help="check configuration, camera, folders, watchlist, Twilio and image links"
    )
    check.add_argument(
        "--live", action="store_true", help="also verify the Twilio credentials against the API"
    )
    check.add_argument(
        "--source", help="check the first camera with this source instead of the configured cameras"
    )
    check.set_defaults(handler=cmd_check)

    user = sub.add_parser(
        "user", help="manage the dashboard's users: add one, list them, change a password, remove one"
    )
    user_sub = user.add_subparsers(dest="action", required=True)
    add = user_sub.add_parser("add", help="add a user; the password is read from standard input")
    add.add_argument("name")
    add.add_argument("--role", choices=("admin", "viewer"), default="viewer")
    add.add_argument("--phone", help="for login codes by SMS, e.g. +15551230000")
    user_sub.add_parser("list", help="list the users")
    passwd = user_sub.add_parser("passwd", help="set a user's password (ends their sessions)")
    passwd.add_argument("name")
    remove = user_sub.add_parser("remove", help="remove a user (ends their sessions)")
    remove.add_argument("name")
    user.set_defaults(handler=cmd_user)

    sub.add_parser(
        "example-config", help="print an example config with every key, its default and its meaning"
    )
    return parser


def cmd_user(config: Config, args: argparse.Namespace) -> int:
    users = open_users(config.paths.users_db)
    try:
        if args.action == "list":
            for u in users.list():
                phone = f" {mask_number(u.phone)}" if u.phone else ""
                print(
                    f"{u.name} {u.role}{phone} since {time.strftime('%Y-%m-%d', time.localtime(u.created))}"
                )
            return 0
        if args.action == "remove":
            if not users.remove(args.name):
                print(f"edgeguard user: no user {args.name}", file=sys.stderr)
                return 1
            _audit(config, "user removed", args.name)
            print(f"user {args.name} removed")
            return 0
        password = _read_password()
        if args.action == "add":
            users.add(args.name, password, args.role, args.phone)
            _audit(config, "user added", args.name, role=args.role)
            print(f"user {args.name} added ({args.role})")
        else:
            users.set_password(args.name, password)
            _audit(config, "password changed", args.name)
            print(f"password of {args.name} changed; their sessions have ended")
        return 0
    except UserError as exc:
        print(f"edgeguard user: {exc}", file=sys.stderr)
        return 2
    finally:
        users.close()


def _read_password() -> str:
    """The new password: asked twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("Password (at least 12 characters): ")
        if getpass.getpass("Again: ") != first:
            raise UserError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_analyze(config: Config, args: argparse.Namespace) -> int:
    engine = FaceEngine(config.recognition, config.mask)
    watchlist = build_watchlist(config, engine, open_cache(config))
    failed = False
    for image in args.images:
        try:
            rgb = load_photo(Path(image).resolve(), config.recognition.max_image_pixels)
        except PhotoError as exc:
            failed = True
            _print_result(args.json, {"image": image, "error": str(exc)})
            continue
        faces = [face.to_json() for face in analyze_photo(engine, rgb, watchlist)]
        _print_result(args.json, {"image": image, "count": len(faces), "faces": faces})
    return 1 if failed else 0


def _print_result(as_json: bool, result: dict) -> None:
    if as_json:
        print(json.dumps(result), flush=True)
        return
    if "error" in result:
        print(f"{result['image']}: error: {result['error']}")
        return
    print(f"{result['image']}: {result['count']} face(s)")
    for face in result["faces"]:
        who = f"{face['name']} (Id {face['id']})" if face["id"] else "unknown"
        if face["vetoed"]:
            who += f" (nearest {face['vetoed']['name']} (Id {face['vetoed']['id']}), vetoed by feedback)"
        distance = "" if face["distance"] is None else f", distance {face['distance']:.3f}"
        mask = (
            ""
            if face["mask"] is None
            else f", {'mask' if face['mask'] else 'no mask'} ({face['mask_score']:.2f})"
        )
        print(f"  {who} at {face['box']}{distance}{mask}")


def cmd_check(config: Config, args: argparse.Namespace) -> int:
    from .service.doctor import run_checks

    logging.getLogger().setLevel(logging.ERROR)  # the checklist says it all
    return run_checks(config, args.source, args.live)


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from .service.daemon import Daemon

    return Daemon(config, args.source, args.realtime, args.camera).run()


def cmd_hub(config: Config, args: argparse.Namespace) -> int:
    try:
        from .hub.service import add_device, run_hub
    except ImportError as exc:  # the hub's libraries are an extra
        print(
            f"edgeguard hub: {exc}; install the hub's libraries: pip install 'edgeguard[hub]'",
            file=sys.stderr,
        )
        return 1
    if args.token:
        return add_device(config, args.token, args.group)
    return run_hub(config)


def cmd_push(config: Config, args: argparse.Namespace) -> int:
    return run_push(
        PushOptions(
            args.url, args.camera, args.token_file, args.source, args.width, args.quality, args.fps, args.loop
        )
    )


def cmd_events(config: Config, args: argparse.Namespace) -> int:
    if args.mqtt or args.follow:
        return _follow_mqtt(config, args)
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"edgeguard events: {exc}", file=sys.stderr)
        return 2
    if not config.paths.events_db.exists():
        print(f"edgeguard events: no event log at {config.paths.events_db} yet", file=sys.stderr)
        return 0
    for event in read_events(config.paths.events_db, since, args.type, args.limit, config.sealer):
        if args.json:
            print(json.dumps(event.to_json()), flush=True)
        else:
            print(f"{event.seq:>5} {event.to_json()['time_iso']} {event.camera} {event.summary()}")
    return 0


def cmd_search(config: Config, args: argparse.Namespace) -> int:
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"edgeguard search: {exc}", file=sys.stderr)
        return 2
    try:
        rgb = load_photo(Path(args.photo).resolve(), config.recognition.max_image_pixels)
        encoding = face_to_search(FaceEngine(config.recognition), rgb)
    except PhotoError as exc:
        print(f"edgeguard search: {args.photo}: {exc}", file=sys.stderr)
        return 1
    if not config.paths.events_db.exists():
        print(f"edgeguard search: no event log at {config.paths.events_db} yet", file=sys.stderr)
        return 0
    events = EventReader(config.paths.events_db, config.sealer)
    try:
        captures = CaptureFolder.of_config(config)
        index = FaceIndex(events, captures, config.match_thresholds, config.captures.retention_days * 86400)
        found = search_events(
            index, events, captures, encoding, SearchFilter(since, args.camera, args.location)
        )
    finally:
        events.close()
    for item in found:
        if args.json:
            print(json.dumps(item.to_json()), flush=True)
        else:
            event = item.event
            print(
                f"{event.seq:>5} {event.to_json()['time_iso']} {event.camera} {event.location}: "
                f"{item.words} match (distance {item.distance:.3f}) {event.summary()}"
            )
    if not found and not args.json:
        print("no event of this face")
    return 0


def _follow_mqtt(config: Config, args: argparse.Namespace) -> int:
    """`events --follow --mqtt`: every device's events from the broker, each once, until SIGINT/SIGTERM."""
    if not (args.mqtt and args.follow):
        print("edgeguard events: --follow and --mqtt go together (events from the broker)", file=sys.stderr)
        return 2
    if not config.mqtt.host:
        print(
            "edgeguard events: set [mqtt] host (and port, user, TLS) to read from the broker", file=sys.stderr
        )
        return EX_CONFIG
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def emit(event: dict) -> None:
        print(json.dumps(event, ensure_ascii=False) if args.json else event_line(event), flush=True)

    def gap(device: str, first: int, last: int) -> None:
        print(f"edgeguard events: {device}: events {first}-{last} not received", file=sys.stderr, flush=True)

    follow(config.mqtt, emit, stop, args.topic, args.group, gap)
    return 0


def cmd_test_alert(config: Config, args: argparse.Namespace) -> int:
    numbers = [args.to] if args.to else sorted({n for route in config.alerts.route for n in route.to})
    if not numbers:
        print(
            "edgeguard test-alert: no recipient: give --to +15551230000 or add an [[alerts.route]]",
            file=sys.stderr,
        )
        return 2
    outbox = Outbox(config.paths.outbox_db, sealer=config.sealer)
    sender = Sender(outbox, TwilioTransport(config.twilio) if config.twilio_ready else None)
    when = time.strftime("%H:%M:%S")
    failed = False
    try:
        for number in numbers:
            message_id = outbox.add(number, trial_body(config.location.name, when), None, None)
            status = sender.deliver(_message(outbox, message_id))
            message = _message(outbox, message_id)
            print(f"{mask_number(number)}: {_describe(message)}")
            failed |= status != "sent"
    finally:
        outbox.close()
    return 1 if failed else 0


def _message(outbox: Outbox, message_id: int) -> Message:
    message = outbox.get(message_id)
    assert message is not None
    return message


def _describe(message: Message) -> str:
    if message.status == "sent":
        return f"sent ({message.sid})"
    if message.status == "dry_run":
        return "not sent: no Twilio credentials (dry run); set them as the README says"
    if message.status == "failed":
        return f"failed: {message.last_error}"
    return f"not sent yet: {message.last_error}; the daemon will retry it"


def cmd_alerts(config: Config, args: argparse.Namespace) -> int:
    if not config.paths.outbox_db.exists():
        print(f"edgeguard alerts: no outbox at {config.paths.outbox_db} yet", file=sys.stderr)
        return 0
    statuses = [s for s, wanted in (("pending", args.pending), ("failed", args.failed)) if wanted]
    messages = read_messages(config.paths.outbox_db, statuses or None, args.limit, config.sealer)
    if not messages and not args.json:
        kinds = " or ".join(statuses)
        print(f"no {kinds + ' ' if kinds else ''}messages in the outbox ({config.paths.outbox_db})")
    for m in messages:
        if args.json:
            print(
                json.dumps(
                    {
                        "id": m.id,
                        "created": m.created,
                        "to": mask_number(m.to_number),
                        "body": m.listed,
                        "media_url": m.media_url,
                        "status": m.status,
                        "attempts": m.attempts,
                        "last_error": m.last_error,
                        "sid": m.sid,
                        "event": m.event_seq,
                    }
                ),
                flush=True,
            )
        else:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.created))
            print(
                f"{m.id:>5} {created} {m.status:<8} {mask_number(m.to_number)} {m.listed}"
                + (f"  [{m.last_error}]" if m.last_error and m.status != "sent" else "")
            )
    return 0


def cmd_feedback(config: Config, args: argparse.Namespace) -> int:
    if not config.paths.events_db.exists():
        print(
            f"edgeguard feedback: no event log at {config.paths.events_db}: there is no event {args.event}",
            file=sys.stderr,
        )
        return 2
    events = EventReader(config.paths.events_db, config.sealer)
    try:
        if args.is_id is not None:
            result = is_person(config, FaceEngine(config.recognition), events, args.event, args.is_id)
        else:
            result = not_person(config, events, args.event)
    except FeedbackError as exc:
        print(f"edgeguard feedback: {exc}", file=sys.stderr)
        return 2
    finally:
        events.close()
    return _feedback_report(result)


def cmd_forget(config: Config, args: argparse.Namespace) -> int:
    try:
        if args.capture is not None:
            done = forget_capture(config, args.capture)
        else:
            done = forget_person(config, args.id)
    except ErasureError as exc:
        print(f"edgeguard forget: {exc}", file=sys.stderr)
        return 2
    _audit(config, "erasure", args.capture or args.id, removed=done)
    for line in done:
        print(line)
    return 0


def cmd_privacy(config: Config, args: argparse.Namespace) -> int:
    try:
        done = migrate(config, lambda line: print(line, flush=True))
    except MigrateError as exc:
        print(f"edgeguard privacy migrate: {exc}", file=sys.stderr)
        return 2
    _audit(config, "data sealed", "site", done=done)
    for line in done:
        print(line)
    return 0


def cmd_audit(config: Config, args: argparse.Namespace) -> int:
    path = config.paths.audit_db
    if not path.exists():
        print(f"no audit log yet ({path}): nothing was changed through edgeguard")
        return 0
    try:
        if args.verify:
            count, problems = verify(path)
        else:
            for row in read_rows(path, args.limit or -1):
                print(row.line())
            return 0
    except (DamagedDatabase, sqlite3.Error) as exc:
        print(f"edgeguard audit: {path}: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"edgeguard audit: {path}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"audit log {path}: {count} rows, the chain is intact")
    return 0


def _audit(config: Config, action: str, target: str, **what: object) -> None:
    """Append a command's change to the audit log, as the system user from "cli"."""
    try:
        audit(config.paths.audit_db, action, command_user(), "cli", target, **what)
    except sqlite3.Error as exc:
        print(f"edgeguard: cannot write the audit log {config.paths.audit_db}: {exc}", file=sys.stderr)


def _feedback_report(result: FeedbackResult) -> int:
    for line in result.done:
        print(line)
    if result.refused:
        print(f"edgeguard feedback: {result.refused}", file=sys.stderr)
        return 1
    if result.changed:
        print("The running daemon reloads its watchlist in a moment.")
    return 0


def cmd_enroll(config: Config, args: argparse.Namespace) -> int:
    engine = FaceEngine(config.recognition)
    if args.check:
        return _enroll_check(config, engine)
    if not args.id or not (args.photos or args.from_capture):
        print(
            "edgeguard enroll: give an ID and at least one PHOTO, --from-capture FILE, or --check",
            file=sys.stderr,
        )
        return 2
    try:
        if args.from_capture:
            result = enrol_from_capture(
                config, engine, args.id, Path(args.from_capture), args.name, args.category
            )
        else:
            result = enrol(config, engine, args.id, [Path(p) for p in args.photos], args.name, args.category)
    except EnrolError as exc:
        print(f"edgeguard enroll: {exc}", file=sys.stderr)
        return 2
    if result.added:
        if args.from_capture:
            _audit(config, "capture enrolled", args.id, capture=Path(args.from_capture).name)
        else:
            _audit(config, "photo added", args.id, photos=[p.name for p in result.added])
    return _enrol_report(args.id, result)


def _enrol_report(person_id: str, result: EnrolResult) -> int:
    for photo, reason in result.refused:
        print(f"{photo}: not added: {reason}")
    given = len(result.added) + len(result.refused)
    print(f"Id {person_id}: {len(result.added)} of {given} photo(s) added")
    return 0 if not result.refused else 1


def _enroll_check(config: Config, engine: FaceEngine) -> int:
    logging.getLogger("edgeguard.watchlist").setLevel(logging.ERROR)  # the report below says it all
    watchlist = build_watchlist(config, engine, open_cache(config))
    print(
        f"{watchlist.enrolled} people enrolled from {len(watchlist.gallery)} photos "
        f"({config.paths.training_images}, {config.paths.details_csv})"
    )
    if not watchlist.problems:
        print("No problems found.")
        return 0
    print(f"{len(watchlist.problems)} problem(s):")
    for problem in watchlist.problems:
        print(f"  {problem}")
    return 1
