"""Grading processes for one grading bundle on one machine.

A :class:`Station` runs ``python -m coursekit.grading.dispatch.worker`` processes
(:mod:`coursekit.grading.dispatch.worker`) from an unpacked grading bundle
(:mod:`coursekit.grading.dispatch.bundle`): the course package they import is the bundle's, and each
grades into a private grading root of its own under the station's scratch folder. It is
what ``course grade`` runs on the instructor's machine (:mod:`coursekit.grading.dispatch.pool`) and
on every Dask worker (:mod:`coursekit.grading.dispatch.daskworker`), so both grade the same way.

A request is one submission as bytes (:func:`coursekit.grading.dispatch.jobs.make_request`); the
answer holds the result, the submission's gradebook rows and the files grading wrote
(submitted, autograded and feedback notebooks, the limits' report), for the instructor's
process to store. On the pipe to a process, one JSON object a line, bytes travel as
base64 (:func:`encode`, :func:`decode`).

Faults: a process that dies while grading (killed, out of memory, a crash in nbgrader) is
replaced and the submission graded once more in the new one; if that one dies too, the
answer says so (``{"failed": reason}``). A submission that runs past ``job_timeout``
seconds has its process stopped, and the answer says that.

This module uses the standard library only: it travels to Dask workers by value (with
:mod:`coursekit.grading.dispatch.daskworker`), where the course package is not installed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

MAX_ATTEMPTS = 2
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
READY = ".unpacked"


class GradingProcessDied(Exception):
    """A grading process ended while it was starting or grading."""

    def __init__(self, code: int | None, detail: str = "") -> None:
        super().__init__(f"exit code {code}" + (f": {detail}" if detail else ""))
        self.code = code
        self.detail = detail


def encode(value: Any) -> Any:
    """``value`` with every ``bytes`` replaced by ``{"base64": ...}`` (JSON-able)."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, dict):
        if set(value) == {"base64"} and isinstance(value["base64"], str):
            return base64.b64decode(value["base64"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def versions() -> dict[str, str]:
    """What must be the same on the instructor's machine and a grading worker's: Python,
    nbgrader, NumPy (as installed) and the course package this module belongs to (the
    instructor's, or in a grading process the bundle's)."""
    import platform
    from importlib import metadata

    found = {"Python": platform.python_version()}
    for name, dist in (("nbgrader", "nbgrader"), ("NumPy", "numpy")):
        try:
            found[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["course package"] = package_identity(Path(__file__).resolve().parents[2])
    return found


def package_identity(package: Path) -> str:
    """The course package in ``package`` (the ``coursekit`` folder) for comparison: its
    version and the SHA-256 of its Python files, e.g. ``0.1.0 (files 3f2a9c01d4e7)``."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if "__pycache__" in rel.parts:
            continue
        data = path.read_bytes()
        h.update(rel.as_posix().encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    init = package / "__init__.py"
    text = init.read_text(encoding="utf-8") if init.is_file() else ""
    match = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", text, re.MULTILINE)
    return f"{match.group(1) if match else 'unknown'} (files {h.hexdigest()[:12]})"


def differences(theirs: dict[str, str], ours: dict[str, str]) -> list[str]:
    """How a worker's :func:`versions` differ from the instructor's, for people:
    ``["NumPy 1.26.4 (the instructor has 2.4.6)"]``."""
    return [f"{name} {theirs.get(name, 'unknown')} (the instructor has {want})"
            for name, want in ours.items() if theirs.get(name) != want]


def unpack(data: bytes, digest: str, base: Path) -> Path:
    """Check a packed bundle against its SHA-256 ``digest`` and unpack it into
    ``base/bundle-<digest>`` (once: a folder already unpacked is reused); its path.

    Raises ``ValueError`` if the bytes do not match the digest or the archive holds a path
    outside the folder.
    """
    found = hashlib.sha256(data).hexdigest()
    if found != digest:
        raise ValueError(f"the grading bundle arrived damaged: SHA-256 {found[:16]}..., "
                         f"expected {digest[:16]}...")
    dest = base / f"bundle-{digest[:16]}"
    ready = dest / READY
    if ready.is_file() and ready.read_text(encoding="utf-8").strip() == digest:
        return dest
    tmp = base / f".bundle-{digest[:16]}-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or member.name.startswith("/") or ".." in parts:
                raise ValueError(f"the grading bundle holds {member.name!r}, which is not a "
                                 "plain file inside it")
            target = tmp.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
    (tmp / READY).write_text(digest, encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    try:
        os.replace(tmp, dest)
    except OSError:  # another thread unpacked it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def remove_other_bundles(base: Path, keep: Path) -> None:
    """Delete bundles of earlier runs unpacked in ``base`` (not ``keep``)."""
    for old in base.glob("bundle-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


class GradingProcess:
    """One ``python -m coursekit.grading.dispatch.worker`` process, started from a bundle folder.

    It answers a first line (its versions, :meth:`hello`), then one line per request.
    """

    def __init__(self, bundle: Path, scratch: Path, options: list[str], log: Path,
                 env: dict[str, str] | None = None) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(bundle), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
        for var in BLAS_THREADS:
            env[var] = "1"
        cmd = [sys.executable, "-m", "coursekit.grading.dispatch.worker", "--bundle", str(bundle),
               "--scratch", str(scratch), *options]
        self.log = log
        with log.open("a", encoding="utf-8") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, text=True, env=env, cwd=scratch,
                                         bufsize=1)
        self._hello: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _died(self) -> GradingProcessDied:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        lines = []
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            pass
        return GradingProcessDied(code, lines[-1][:300] if lines else "")

    def _read(self, timeout: float | None) -> tuple[str, bool]:
        """The next line (empty if the process ended) and whether ``timeout`` ran out (the
        process is then killed)."""
        assert self.proc.stdout is not None
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            self.proc.kill()

        timer = threading.Timer(timeout, stop) if timeout else None
        if timer:
            timer.start()
        try:
            line = self.proc.stdout.readline()
        except (OSError, ValueError):
            line = ""
        finally:
            if timer:
                timer.cancel()
        return line, timed_out.is_set()

    def hello(self, timeout: float | None = 300) -> dict[str, Any]:
        """What the process said when it started: its versions (and why it cannot grade, if
        it cannot). Raises :class:`GradingProcessDied` if it ended instead."""
        if self._hello is None:
            line, _ = self._read(timeout)
            if not line:
                raise self._died()
            self._hello = json.loads(line).get("hello", {})
        return self._hello

    def grade(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Grade one request; the answer. ``{"failed": ...}`` if it ran past ``timeout``
        seconds (the process is then stopped); :class:`GradingProcessDied` if it died."""
        self.hello()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(encode(request)) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise self._died() from None
        line, timed_out = self._read(timeout)
        if timed_out:
            self.proc.wait()
            return {"failed": f"grading took longer than {timeout:.0f} s; the grading worker "
                              "was stopped", "retry": True}
        if not line:
            raise self._died()
        return decode(json.loads(line))

    def stop(self, wait: float = 30) -> None:
        """Close its input (it ends after its current request); kill it if it hangs."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=wait)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Station:
    """Grading processes sharing one bundle folder; :meth:`grade` may be called from
    several threads at once (each call takes a process of its own)."""

    def __init__(self, bundle: Path, scratch: Path, options: list[str], job_timeout: float,
                 env: dict[str, str] | None = None) -> None:
        self.bundle = bundle
        self.scratch = scratch
        self.options = list(options)
        self.job_timeout = job_timeout
        self.env = env
        self.lock = threading.Lock()
        self.idle: list[GradingProcess] = []
        self.busy: dict[int, GradingProcess] = {}  # thread id -> its process
        self.started = 0
        self.closed = False

    def _spawn(self) -> GradingProcess:
        with self.lock:
            self.started += 1
            number = self.started
        return GradingProcess(self.bundle, self.scratch / f"p{number}", self.options,
                              self.scratch / f"p{number}.log", self.env)

    def start(self, n: int) -> None:
        """Start ``n`` processes now (they load nbgrader while the caller prepares)."""
        procs = [self._spawn() for _ in range(n)]
        with self.lock:
            self.idle += procs

    def hello(self) -> dict[str, Any]:
        """The first line of a process: its versions, or why it cannot grade here."""
        proc = self._take()
        try:
            return proc.hello()
        finally:
            self._give(proc)

    def pids(self) -> list[int]:
        """The process ids of its grading processes, busy ones first."""
        with self.lock:
            return [p.pid for p in (*self.busy.values(), *self.idle)]

    def _take(self) -> GradingProcess:
        with self.lock:
            while self.idle:
                proc = self.idle.pop(0)
                if proc.alive():
                    self.busy[threading.get_ident()] = proc
                    return proc
        proc = self._spawn()
        with self.lock:
            self.busy[threading.get_ident()] = proc
        return proc

    def _give(self, proc: GradingProcess | None) -> None:
        with self.lock:
            self.busy.pop(threading.get_ident(), None)
            if proc is not None and proc.alive() and not self.closed:
                self.idle.append(proc)
                return
        if proc is not None:
            proc.stop()

    def grade(self, request: dict[str, Any]) -> dict[str, Any]:
        """Grade one request in a process of this station; the answer (``notes`` in it say
        what went wrong on the way)."""
        notes: list[str] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            proc = self._take()
            try:
                answer = proc.grade(request, self.job_timeout)
            except GradingProcessDied as died:
                self._give(None)
                proc.kill()
                if attempt < MAX_ATTEMPTS:
                    notes.append(f"the grading process died ({died}); graded again in a new "
                                 "one")
                    continue
                return {"failed": f"the grading worker died {attempt} times while grading "
                                  f"this submission (last exit code {died.code})",
                        "notes": notes, "retry": True}
            self._give(proc if "retry" not in answer else None)
            answer["notes"] = notes + list(answer.get("notes", []))
            return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop every process (a busy one after its current request, or killed)."""
        with self.lock:
            self.closed = True
            procs = [*self.idle, *self.busy.values()]
            self.idle.clear()
        for proc in procs:
            proc.stop(wait=10)
