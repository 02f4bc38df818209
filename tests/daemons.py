"""`edgeguard run` as a real background process for tests, and the fixture that cleans up after it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class Daemon:
    """`edgeguard run` in the background; stderr lines collected on a thread with the time they arrived."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "edgeguard", "--config", str(config), "run", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line))

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)

    def wait_for_line(self, text: str, timeout: float) -> float:
        """Seconds from start until a stderr line containing `text`."""
        deadline = time.monotonic() + timeout
        while True:
            for when, line in list(self.lines):
                if text in line:
                    return when - self.started
            assert self.proc.poll() is None or self._reader.is_alive(), f"daemon exited:\n{self.stderr}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n{self.stderr}"
            time.sleep(0.01)

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
