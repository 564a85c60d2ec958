"""A throwaway PostgreSQL server for tests: ``initdb`` and ``pg_ctl`` (Debian's binaries) in a
temporary folder, listening on a free loopback port, stopped by its process id.

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` system user
that Debian's package creates. ``scripts/install-postgresql`` installs the package (and the
driver); without them the tests that need a server are skipped, except in CI (CI=true),
where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest


def bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are (Debian keeps them out of PATH), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def unavailable() -> str | None:
    """Why a server cannot be started here (None if it can)."""
    if bindir() is None:
        return "PostgreSQL is not installed (bash scripts/install-postgresql installs it)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the PostgreSQL driver psycopg is not installed (bash scripts/install-postgresql)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


def skip_or_fail_without_server() -> None:
    """Skip the calling test where no server can be started; fail in CI."""
    why = unavailable()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must run the PostgreSQL tests")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running server: its folder, port and postmaster process id (and the password of
    its ``postgres`` user, for a server that asks for one)."""

    folder: Path
    port: int
    pid: int
    password: str | None = None

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server (loopback; no password in it)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name``; its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             password=self.password, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run_as(owner: str | None) -> dict:
    return {"user": owner, "group": owner} if owner else {}


def start(password: str | None = None) -> Server:
    """Start a server in a new temporary folder (the caller must :func:`stop` it). With
    ``password``, the ``postgres`` user must give it (scram-sha-256) instead of being
    trusted."""
    bins = bindir()
    assert bins is not None
    owner = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="course-pg-"))
    data = folder / "data"
    if owner:
        shutil.chown(folder, owner, owner)
    port = _free_port()
    kw = _run_as(owner)
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    auth = ["-A", "trust"]
    if password is not None:
        pwfile = folder / "pwfile"
        pwfile.write_text(password + "\n")
        if owner:
            shutil.chown(pwfile, owner, owner)
        auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run([str(bins / "initdb"), "-D", str(data), "-U", "postgres", *auth,
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, env=env,
                   cwd=folder, **kw)
    log = folder / "server.log"
    subprocess.run([str(bins / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c full_page_writes=off", "start"],
                   check=True, capture_output=True, env=env, cwd=folder, **kw)
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    return Server(folder, port, pid, password)


def stop(server: Server) -> None:
    """Stop the server by its process id (fast shutdown, then a kill) and remove its folder."""
    try:
        os.kill(server.pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(server.pid):
        time.sleep(0.1)
    if _alive(server.pid):
        os.kill(server.pid, signal.SIGKILL)
    shutil.rmtree(server.folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child counts as gone
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
