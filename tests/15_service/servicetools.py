"""Helpers of the grading service's tests: a course of its own (so that its course.toml can
say what a case needs), the real ``course serve`` and ``course tokens`` commands in
processes of their own on a loopback port, an HTTP client that keeps every answer, and the
notebooks a student hands in.

Expected scores are never written here: they come from the source notebook's points or
from ``course grade`` run on the same files (a separate grading root and gradebook).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.cells import grade_id, nbgrader_meta
from coursekit.course import Course
from coursekit.leaks import secrets_of

REPO = Path(__file__).resolve().parents[2]
COURSE_PARTS = ("modules", "source_notebooks", "release", "tinytorch", "binder", "milestones",
                "data", "grader_config.py", "pyproject.toml")


def make_course(dest: Path, settings: str) -> Course:
    """A copy of the course's sources, generated files and package, with ``settings`` as
    its course.toml (the student repository's slug stays the course's: the release
    notebooks' Colab cells install from it)."""
    dest.mkdir(parents=True)
    for part in COURSE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part,
                            ignore=shutil.ignore_patterns("__pycache__", "output", "*.pyc"))
        elif src.is_file():
            shutil.copy2(src, dest / part)
    (dest / "course.toml").write_text(settings, encoding="utf-8")
    return Course(dest)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def course_cmd(course: Course, *args: str) -> list[str]:
    """The ``course`` command line for ``course`` (this Python, the course's root)."""
    return [sys.executable, "-m", "coursekit", "--root", str(course.root), *args]


def issue_tokens(course: Course, grading: Path, db_url: str, students: list[str],
                 *extra: str) -> dict[str, str]:
    """``course tokens`` for ``students``: student -> token, from the CSV it prints."""
    args = [a for s in students for a in ("--student", s)]
    done = subprocess.run(course_cmd(course, "tokens", "--grading", str(grading), "--db-url",
                                     db_url, *args, *extra),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    return {r["student"]: r["token"] for r in rows}


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class ServiceProcess:
    """``course serve`` in a process of its own (its own session: stopped by its group)."""

    course: Course
    grading: Path
    db_url: str
    log: Path
    workers: int = 2
    port: int = field(default_factory=free_port)
    scheduler: str | None = None  # a Dask scheduler instead of local grading processes
    proc: subprocess.Popen[bytes] | None = None
    replies: list[Reply] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # every request body

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        out = open(self.log, "a", encoding="utf-8")  # noqa: SIM115 - the process keeps it
        where = (["--scheduler", self.scheduler] if self.scheduler
                 else ["--workers", str(self.workers)])
        self.proc = subprocess.Popen(
            course_cmd(self.course, "serve", "--grading", str(self.grading), "--db-url",
                       self.db_url, *where, "--port", str(self.port),
                       "--forwarded-allow-ips", "127.0.0.1"),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"course serve exited {self.proc.returncode}:\n"
                                     + self.log.read_text(encoding="utf-8")[-3000:])
            try:
                if self.call("GET", "/api").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"course serve did not answer in {timeout} s; see {self.log}")

    def stop(self, timeout: float = 90) -> int | None:
        """Stop the service (SIGTERM: it finishes what it grades), then anything of its
        group left; its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group()
        return self.proc.returncode

    def kill(self) -> None:
        """``kill -9`` the service's own process, as a crash would."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def kill_group(self) -> None:
        """Kill whatever of the service's process group is left (its grading processes)."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(30)

    def call(self, method: str, path: str, *, token: str | None = None,
             body: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float = 120) -> Reply:
        """One request; every body sent and every answer is kept."""
        given = dict(headers or {})
        if token is not None:
            given["Authorization"] = f"Bearer {token}"
        if body:
            self.sent.append(body)
        request = urllib.request.Request(self.base + path, data=body, method=method,
                                         headers=given)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                reply = Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            reply = Reply(exc.code, dict(exc.headers), exc.read())
        self.replies.append(reply)
        return reply

    def submit(self, token: str, module: str, notebook: dict[str, Any] | bytes,
               **headers: str) -> Reply:
        data = notebook if isinstance(notebook, bytes) else json.dumps(notebook).encode()
        return self.call("POST", f"/api/submissions?module={module}", token=token, body=data,
                         headers={"Content-Type": "application/x-ipynb+json", **headers})

    def result(self, token: str, attempt: int, timeout: float = 300) -> dict[str, Any]:
        """Wait for an attempt's result (asking as the Submit cell does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.call("GET", f"/api/attempts/{attempt}?wait=20", token=token)
            assert reply.status == 200, (reply.status, reply.text)
            data = reply.json
            if data["state"] in ("done", "failed"):
                return data
        raise AssertionError(f"attempt {attempt} not graded in {timeout} s")


# -- notebooks -------------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def solved(course: Course, folder: str) -> dict[str, Any]:
    """The release notebook of ``folder`` with every solution written in (the reference
    solutions, without nbgrader's region markers), as a student who finished it saves it."""
    (module,) = course.select([folder])
    solutions = {}
    for cell in load(module.source_notebook)["cells"]:
        if nbgrader_meta(cell).get("solution"):
            text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            solutions[grade_id(cell)] = "\n".join(
                line for line in text.splitlines()
                if "BEGIN SOLUTION" not in line and "END SOLUTION" not in line)
    nb = load(module.release_notebook)
    for cell in nb["cells"]:
        if grade_id(cell) in solutions:
            cell["source"] = solutions[grade_id(cell)]
    return nb


def untouched(course: Course, folder: str) -> dict[str, Any]:
    (module,) = course.select([folder])
    return load(module.release_notebook)


def with_code(nb: dict[str, Any], code: str) -> dict[str, Any]:
    """``nb`` with ``code`` added at the end of its first solution cell."""
    out = json.loads(json.dumps(nb))
    for cell in out["cells"]:
        if nbgrader_meta(cell).get("solution"):
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cell["source"] = src + "\n" + code
            return out
    raise AssertionError("no solution cell")


def broken(nb: dict[str, Any], method: str) -> dict[str, Any]:
    """A solved 01 notebook whose ``Tensor.<method>`` is not written after all."""
    return with_code(nb, f"def _not_written(self, *args, **kwargs):\n"
                         f"    raise NotImplementedError('{method}: not written yet')\n\n\n"
                         f"Tensor.{method} = _not_written\n")


def without_cell(nb: dict[str, Any], gid: str) -> dict[str, Any]:
    out = json.loads(json.dumps(nb))
    out["cells"] = [c for c in out["cells"] if grade_id(c) != gid]
    assert len(out["cells"]) == len(nb["cells"]) - 1, gid
    return out


def points(course: Course, folder: str) -> float:
    """Total points of a module (from its source notebook)."""
    (module,) = course.select([folder])
    return float(sum(nbgrader_meta(c).get("points", 0) for c in load(module.source_notebook)
                     ["cells"] if nbgrader_meta(c).get("grade")))


def hidden_lines(course: Course) -> set[str]:
    """The hidden-test lines of every module (what the leak guard looks for)."""
    found: set[str] = set()
    for module in course.modules():
        found |= set(secrets_of(load(module.source_notebook)).hidden)
    return found


def shown_text(reply: Reply) -> str:
    """What an answer shows a reader: JSON strings decoded, HTML entities read."""
    kind = reply.headers.get("content-type", reply.headers.get("Content-Type", ""))
    if "json" in kind:
        return _strings(reply.json)
    return html.unescape(reply.text)


def _strings(data: Any) -> str:
    if isinstance(data, dict):
        return "\n".join(_strings(v) for v in data.values())
    if isinstance(data, list):
        return "\n".join(_strings(v) for v in data)
    return str(data)


# -- raw connections (a request sent in part) ------------------------------------------------


def send_part(port: int, head: str, body: bytes = b"") -> socket.socket:
    """A connection to the service that sent ``head`` (request line and headers, without
    the blank line that ends them) and ``body``, and nothing more yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
    return sock


def post_head(path: str, token: str, length: int) -> str:
    """The head of a POST of ``length`` bytes with ``token``."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/x-ipynb+json\r\nContent-Length: {length}")


def answer(sock: socket.socket, timeout: float = 30) -> tuple[int, bytes]:
    """The status and the bytes the service sends on ``sock`` until it closes it or a
    whole answer with a Content-Length has come; (0, b"") when it closes without one."""
    sock.settimeout(timeout)
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        got += chunk
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    if not got:
        return 0, b""
    return int(got.split(b" ", 2)[1]), got
