"""`edgeguard run` as a real background process for tests, and the fixture that cleans up after it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from helpers import clean_env, wait_for  # tests/helpers.py


class Daemon:
    """`edgeguard run` in the background; stderr lines collected on a thread with the time they arrived.

    `env` defaults to clean_env(): no config or Twilio credentials from the developer's environment."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgeguard", "--config", str(config), "run", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env() if env is None else env,
        )
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line))

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)

    def line_time(self, text: str) -> float | None:
        """Seconds from start until the first stderr line containing `text`; None if none came yet."""
        return next((when - self.started for when, line in list(self.lines) if text in line), None)

    def wait_for_line(self, text: str, timeout: float) -> float:
        """Seconds from start until a stderr line containing `text`."""

        def seen() -> tuple[float] | None:
            when = self.line_time(text)
            if when is None:
                assert self.proc.poll() is None or self._reader.is_alive(), f"daemon exited:\n{self.stderr}"
                return None
            return (when,)

        return wait_for(seen, timeout, lambda: f"a line with {text!r}:\n{self.stderr}", poll=0.01)[0]

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
