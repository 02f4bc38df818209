"""A throwaway PostgreSQL server for the hub's tests: `initdb` in a temporary folder, started on a free
loopback port (its socket in that folder), a fresh database per test, stopped and removed afterwards.
PostgreSQL refuses to run as root, so under root the cluster belongs to `nobody`.  Tests skip (with the
reason) where Debian's postgresql is not installed (.ci/run installs it)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


INITDB, PG_CTL = _bin("initdb"), _bin("pg_ctl")
needs_postgres = pytest.mark.skipif(
    not (INITDB and PG_CTL), reason="Debian's postgresql is not installed (.ci/run installs it)"
)
USER = "edgeguard"


class PostgresServer:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="edgeguard-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "nobody", "nogroup")
            self._as = ["runuser", "-u", "nobody", "--"]
        self._run([INITDB, "-D", str(self.data), "-U", USER, "-A", "trust", "--no-sync", "-E", "UTF8"])
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            [PG_CTL, "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start"]
        )

    def _run(self, command: list[str]) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, cwd=self.folder)
        if done.returncode:
            raise RuntimeError(f"{command[0]} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")

    def database(self) -> str:
        """A new empty database: its SQLAlchemy URL."""
        name = f"hub_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run([PG_CTL, "-D", str(self.data), "-m", "fast", "-w", "stop"])
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[PostgresServer]:
    if not (INITDB and PG_CTL):
        pytest.skip("Debian's postgresql is not installed (.ci/run installs it)")
    server = PostgresServer()
    yield server
    server.stop()
