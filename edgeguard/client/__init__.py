"""Programs that run beside a camera rather than in the daemon:
`push.py` sends a camera's frames to a daemon."""
