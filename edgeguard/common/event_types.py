"""The kinds of event, as the event log stores them: one list for every stage, down here because config.py
validates the alert routes' event types and comes before the events stage."""

EVENT_TYPES = ("unknown_face", "known_face", "crowd", "no_mask", "camera_down", "camera_up")
CAMERA_EVENTS = ("camera_down", "camera_up")
