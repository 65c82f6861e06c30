"""A throwaway PostgreSQL server for the tests: a new cluster in a temporary folder, Unix socket only.

``PgServer.start()`` runs Debian's ``initdb`` and ``pg_ctl`` (PostgreSQL 15 here) in a fresh
folder and starts the server listening on a socket in that folder and on no TCP port, with
``fsync`` off (a crashed test run loses nothing worth keeping). As root the server runs as the
``postgres`` user: PostgreSQL refuses to run as root. ``new_database()`` gives each test a
database of its own (created from ``template0``) and its ``postgresql://`` URL; ``stop()`` stops
the server and removes the folder.

When the server cannot start, ``start`` raises ``PgUnavailable`` with the reason; the fixture
skips PostgreSQL tests then, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

SEARCH = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")


class PgUnavailable(RuntimeError):
    """No PostgreSQL server could be started here."""


def _tool(name: str) -> str:
    for folder in SEARCH:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise PgUnavailable(f"{name} not found (install Debian's postgresql package)")


class PgServer:
    """One cluster for a test session; a database per test."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="saathi-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder
        self.user = "saathi"
        self._names = itertools.count(1)
        self._as: list[str] = []
        self.started = False

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=timeout, cwd=str(self.folder))

    def start(self) -> PgServer:
        initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
        if os.geteuid() == 0:  # PostgreSQL will not run as root: as the postgres user, in a folder it owns
            try:
                account = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PgUnavailable("running as root and there is no postgres user") from exc
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        done = self._run(initdb, "-D", str(self.data), "-U", self.user, "-A", "trust", "--no-sync", "-E", "UTF8",
                         "--locale=C.UTF-8")
        if done.returncode != 0:
            raise PgUnavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        done = self._run(pg_ctl, "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "-t", "30", "start")
        if done.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")[-800:] if (self.folder / "server.log").exists() else ""
            raise PgUnavailable(f"pg_ctl start failed: {done.stderr.strip()[-300:]} {log}")
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` over the Unix socket."""
        return f"postgresql://{self.user}@/{database}?host={quote(str(self.socket_dir), safe='')}"

    def new_database(self) -> str:
        """Create an empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def cpu_seconds(self) -> float:
        """CPU used by the server so far: the postmaster and every backend that has exited (its reaped children)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime

    def stop(self) -> None:
        if self.started:
            self._run(_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)
