"""A throwaway PostgreSQL cluster for tests that stop, restart or break the server: initdb in
a temporary directory, its own port, never the shared server. Run as the ``postgres`` system
user when the tests run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.databases import IN_CI
from tests.support.live import free_port


def _bindir() -> Path | None:
    """The server binaries of the newest installed PostgreSQL (Debian's layout, else PATH)."""
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if (p / "bin" / "initdb").exists()), key=_v)
        if versions:
            return versions[-1] / "bin"
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _v(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split(".") if part.isdigit())


@dataclass
class Cluster:
    """A running throwaway cluster: ``url`` reaches its ``postgres`` database as superuser."""

    bindir: Path
    data: Path
    port: int
    log: Path
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self._ctl("-w", "-o", options, "start")

    def stop(self, mode: str = "fast", *, wait: bool = True) -> None:
        """``pg_ctl stop -m mode``; ``wait=False`` returns at once (a smart shutdown waits for
        its sessions to end, refusing new ones meanwhile)."""
        self._ctl("-m", mode, *(["-w"] if wait else ["-W"]), "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A fresh cluster for the test, stopped and removed afterwards. Skips (fails in CI) when
    no PostgreSQL server binaries are installed."""
    bindir = _bindir()
    if bindir is None:
        message = "no PostgreSQL server binaries (initdb) installed"
        if IN_CI:
            pytest.fail(f"{message}; CI requires them", pytrace=False)
        pytest.skip(message)
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="convstore-pg-"))
    data = root / "data"
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    init = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
    if run_as:
        init = ["runuser", "-u", run_as, "--", *init]
    subprocess.run(init, check=True, capture_output=True, timeout=120)
    cluster = Cluster(bindir, data, free_port(), root / "server.log", run_as)
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
