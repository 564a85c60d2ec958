"""The grading service's HTTP interface (Starlette).

Students (a token of theirs in ``Authorization: Bearer ...``):

* ``POST /api/submissions?module=NN_name``: the notebook as the body. 202 with the attempt
  (queued, its place in the queue), 200 for one already accepted (the same
  ``Idempotency-Key``, or a notebook whose code did not change since the last attempt),
  or one line that says why not: 400 (not a notebook), 401 (no or a wrong token), 403
  (the module is closed), 404 (not a module open for submission), 413 (too big), 422 (the
  notebook of another module or course), 429 (too many submissions, too many notebooks
  refused, two being sent already, or too many wrong tokens; ``Retry-After``), 503 (the
  queue is full; ``Retry-After``). Whatever needs no notebook is answered before the
  notebook is read.
* ``GET /api/attempts[?module=NN_name]``: their attempts; ``GET /api/attempts/N[?wait=S]``:
  one of them, waiting up to S seconds (at most 30) for its result: the score, each test's
  name, points and failure message, which attempt counts, and the link to its feedback page
  (``GET /api/attempts/N/feedback?key=...``, readable with that link alone).

The instructor (a token made with ``course tokens --instructor NAME``):

* ``GET /api/status``: queue length, grading processes, latency p50/p95, last errors;
* ``GET /api/report``: the class report (``course report``), made again when it is older
  than a minute; ``GET /api/report/report-*.csv``, the numbers behind it.

What a student's answer carries is what the feedback page carries: never hidden-test code,
never anything the kernel printed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from coursekit.course import Course, CourseError, Module
from coursekit.grading.records.database import masked
from coursekit.grading.session import GradingSession, Submission
from coursekit.handin import ServiceSettings
from coursekit.service import intake
from coursekit.service.attempts import Grader, now, utc
from coursekit.service.store import Attempt, Store
from coursekit.service.tokens import Identity, Verifier
from coursekit.text import clean

MAX_WAIT = 30.0  # seconds a question about a result may wait
REPORT_AGE = 60.0  # seconds a class report is served before it is made again
BAD_WINDOW = 600.0  # seconds over which wrong tokens from one address are counted
BODY_SECONDS = 60.0  # a notebook's upload takes at most this long (5 MB at 85 kB/s)
UPLOADS_PER_TOKEN = 2  # notebooks one token may be sending at once
SCRYPT_THREADS = 2  # tokens checked at once (scrypt takes a core and 16 MiB each)
_CSV_RE = re.compile(r"^report-[a-z0-9_-]+\.csv$")
_NUMBER_RE = re.compile(r"[0-9]{1,12}")
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
FEEDBACK_PREFIX = "h1:"  # a stored nonce (the key is its HMAC); older rows hold the key


class Failure(Exception):
    """An answer other than success: HTTP status, one line, and Retry-After if any."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def bucket(address: str) -> str:
    """The address the limits count: an IPv6 address by its /64 (one network hands out a
    whole /64 to one machine), any other as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return address


class Limiter:
    """Failures per key (a client address, a token id, a student): past ``limit`` within
    ``window`` seconds the key waits until the oldest one leaves the window.

    :meth:`take` counts a failure before the costly check it guards is made (under one
    lock, so that parallel requests cannot all pass), and :meth:`give_back` takes it back
    when the check succeeded."""

    def __init__(self, limit: int = 30, window: float = BAD_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _wait(self, key: str, at: float) -> float | None:
        fails = self._fails.get(key)
        if not fails:
            return None
        cutoff = at - self.window
        while fails and fails[0] < cutoff:
            fails.popleft()
        if len(fails) < self.limit:
            return None
        return max(1.0, fails[0] + self.window - at)

    def blocked(self, key: str) -> float | None:
        """Seconds ``key`` must wait (None: it may try)."""
        with self._lock:
            return self._wait(key, time.monotonic())

    def fail(self, key: str) -> None:
        """Count one failure of ``key``."""
        self.take(key, force=True)

    def take(self, key: str, *, force: bool = False) -> float | None:
        """Count a failure of ``key`` now, unless it must wait (``force``: count it anyway);
        None when counted, else the seconds to wait."""
        with self._lock:
            at = time.monotonic()
            wait = self._wait(key, at)
            if wait is not None and not force:
                return wait
            if len(self._fails) > 100_000:  # forget keys that stopped failing
                cutoff = at - self.window
                self._fails = {k: f for k, f in self._fails.items() if f and f[-1] >= cutoff}
            self._fails.setdefault(key, deque(maxlen=self.limit + 1)).append(at)
            return None

    def give_back(self, key: str) -> None:
        """Take back the last failure counted for ``key`` (the check it guarded passed)."""
        with self._lock:
            fails = self._fails.get(key)
            if fails:
                fails.pop()


def refusals_per_hour(settings: ServiceSettings) -> int:
    """Notebooks of one student refused (not a notebook, too big, another module's) in an
    hour before the next is not read at all (429): twice the hourly submissions, at least
    10, so that a mistake or two never stops anyone."""
    return max(10, 2 * settings.submissions_per_hour)


class Uploads:
    """Notebooks being sent with one token at once: more than ``limit`` is refused (429)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._now: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def one(self, token_id: str) -> Iterator[None]:
        with self._lock:
            if self._now.get(token_id, 0) >= self.limit:
                raise Failure(429, f"{self.limit} submissions are being sent with your token "
                              "already: wait for their answers", 5.0)
            self._now[token_id] = self._now.get(token_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._now[token_id] -= 1
                if not self._now[token_id]:
                    del self._now[token_id]


class Waiters:
    """Requests waiting for an attempt's result, woken from the grading threads."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._futures: dict[int, set[asyncio.Future[None]]] = {}

    def add(self, attempt_id: int) -> asyncio.Future[None]:
        assert self.loop is not None
        future: asyncio.Future[None] = self.loop.create_future()
        self._futures.setdefault(attempt_id, set()).add(future)
        return future

    def remove(self, attempt_id: int, future: asyncio.Future[None]) -> None:
        found = self._futures.get(attempt_id)
        if found is not None:
            found.discard(future)
            if not found:
                del self._futures[attempt_id]

    def notify(self, attempt_id: int) -> None:
        """Wake the requests waiting for ``attempt_id`` (from any thread)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake, attempt_id)

    def _wake(self, attempt_id: int) -> None:
        for future in self._futures.pop(attempt_id, set()):
            if not future.done():
                future.set_result(None)


@dataclass
class Service:
    """Everything the routes use."""

    course: Course
    session: GradingSession
    store: Store
    grader: Grader
    settings: ServiceSettings
    cells: dict[str, intake.Cells]
    slug: str
    log: Callable[[str], None] = print
    verifier: Verifier = field(init=False)
    limiter: Limiter = field(default_factory=Limiter)  # wrong tokens per client address
    token_limiter: Limiter = field(default_factory=Limiter)  # wrong secrets per token id
    scrypt_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(SCRYPT_THREADS, "scrypt"))
    waiters: Waiters = field(default_factory=Waiters)
    accept_lock: threading.Lock = field(default_factory=threading.Lock)  # queue places
    reserved: int = 0  # places in the queue taken by submissions being accepted
    refusals: Limiter = field(default_factory=Limiter)  # refused notebooks per student
    uploads: Uploads = field(default_factory=lambda: Uploads(UPLOADS_PER_TOKEN))
    _student_locks: dict[str, threading.Lock] = field(default_factory=dict)
    request_errors: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=20))
    _feedback_secret: bytes | None = None
    report_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.verifier = Verifier(self.store)
        self.limiter = Limiter(self.settings.wrong_tokens)
        self.token_limiter = Limiter(self.settings.wrong_tokens)
        self.refusals = Limiter(refusals_per_hour(self.settings), window=3600.0)
        self.grader.on_change = self.waiters.notify

    def student_lock(self, student: str) -> threading.Lock:
        """The lock one student's submissions are accepted under."""
        with self.accept_lock:
            return self._student_locks.setdefault(student, threading.Lock())

    def feedback_key(self, attempt: Attempt) -> str:
        """The key of ``attempt``'s feedback page link. The database keeps a nonce; the key
        is its HMAC with the grading root's secret (``service/feedback-secret``, readable by
        its owner alone), so that whoever reads the database alone opens no page."""
        stored = attempt.feedback_key
        if not stored.startswith(FEEDBACK_PREFIX):
            return stored  # an attempt accepted before keys were kept this way
        digest = hmac.new(self.feedback_secret, stored.encode("ascii"), "sha256").digest()
        return base64.urlsafe_b64encode(digest[:24]).decode("ascii")

    @property
    def feedback_secret(self) -> bytes:
        if self._feedback_secret is None:
            path = self.session.root / "service" / "feedback-secret"
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(32))
                    out.flush()
                    os.fsync(out.fileno())
            secret = path.read_bytes()
            if len(secret) < 32:
                raise CourseError(f"{path}: damaged (expected 32 random bytes)")
            self._feedback_secret = secret
        return self._feedback_secret

    @property
    def incoming(self) -> Path:
        return self.session.root / "service" / "incoming"


def _number(request: Request, missing: str) -> int:
    """The attempt number in the path: 404 with ``missing`` unless it is 1 to 12 digits."""
    text = request.path_params["number"]
    if not _NUMBER_RE.fullmatch(text):
        raise Failure(404, f"{missing}: a submission is a number such as 12")
    return int(text)


def _error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(int(max(1, round(retry_after))))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="course grading service"'
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def identify(service: Service, request: Request) -> Identity:
    """Who the request's token belongs to; :class:`Failure` 401 or 429 otherwise.

    A valid token always gets through, whatever else came from its address (a class behind
    one proxy or NAT shares it). Wrong tokens are counted per client address (an IPv6
    address by its /64) and, when they name a real token, per token id: past
    ``[service] wrong_tokens`` in 10 minutes a wrong token from that address is answered
    429, and a token id stops having its secret checked (scrypt, the costly part) until the
    window passes; the failure is counted before the check, so parallel requests cannot
    all pass. A token checked once is remembered and costs nothing after."""
    address = bucket(_address(request))
    header = request.headers.get("authorization", "")
    scheme, _, text = header.partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise Failure(401, "no token: send it as 'Authorization: Bearer <token>'")
    found = await run_in_threadpool(service.verifier.find, text)
    if found is not None and found.known:
        return found.identity
    if found is not None:
        token_id = found.row.id
        wait = service.token_limiter.take(token_id)
        if wait is not None:
            service.limiter.fail(address)
            raise Failure(429, f"too many wrong secrets for this token: try again in "
                          f"{int(wait)} s", wait)
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(service.scrypt_pool, service.verifier.verify, found):
            service.token_limiter.give_back(token_id)
            return found.identity
    wait = service.limiter.blocked(address)
    service.limiter.fail(address)
    service.log(f"serve: wrong token from {clean(address)}")
    if wait is not None:
        raise Failure(429, f"too many wrong tokens from {address}: try again in "
                      f"{int(wait)} s", wait)
    raise Failure(401, "this token is not valid (unknown, revoked or mistyped)")


def _describe(service: Service, attempt: Attempt) -> dict[str, Any]:
    """An attempt as its student sees it (reads the database: in a worker thread)."""
    if attempt.state == "done":
        data = dict(attempt.view)
        data["feedback"] = (f"/api/attempts/{attempt.id}/feedback?key="
                            f"{service.feedback_key(attempt)}"
                            if (service.session.root / attempt.folder / "feedback.html")
                            .is_file() else None)
        data["counts"] = attempt.counts
        data["counting"] = _counting_text(service, attempt)
        return data
    base = {"attempt": attempt.id, "student": attempt.student, "module": attempt.module,
            "state": attempt.state, "submitted": utc(attempt.submitted_at),
            "notes": attempt.view.get("notes", [])}
    if attempt.state == "failed":
        base["error"] = ("the grader could not grade this submission; your instructor is "
                         "told. Submit again later")
    else:
        base["position"] = service.grader.position(attempt.id)
    return base


def _counting_text(service: Service, attempt: Attempt) -> str:
    if service.settings.counts == "best":
        rule = "your best score"
    elif service.grader.deadline(attempt.student, attempt.module) is not None:
        rule = "the last one before the due date"
    else:
        rule = "the last one"
    if attempt.counts:
        return f"This submission counts ({rule})."
    others = [a for a in service.store.attempts(attempt.student, attempt.module) if a.counts]
    if not others:
        return ""
    other = others[0]
    return (f"Submission {other.id} ({utc(other.submitted_at)}, "
            f"{other.score or 0:g}/{other.max_score or 0:g}) counts, not this one ({rule}).")


async def _body(request: Request, limit: int, seconds: float = BODY_SECONDS) -> bytes:
    """The request's body: 413 past ``limit`` bytes (before reading when Content-Length
    says so), 408 when it has not all come within ``seconds`` (a client that sends a byte
    now and then holds nothing for long), 400 when the client went away."""
    length = request.headers.get("content-length")
    too_big = (f"the notebook is larger than the course's limit of "
               f"{limit / 1024 / 1024:g} MB: clear large outputs (Edit > Clear Outputs of "
               "All Cells), save, and submit again")
    if length is not None:
        try:
            if int(length) > limit:
                raise Failure(413, too_big)
        except ValueError:
            raise Failure(400, f"Content-Length {length[:40]!r} is not a number") from None
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Failure(413, too_big)
                chunks.append(chunk)
    except TimeoutError:
        raise Failure(408, f"the notebook did not arrive within {seconds:g} s: submit "
                      "again") from None
    except ClientDisconnect:
        raise Failure(400, "the connection closed before the whole notebook came") from None
    return b"".join(chunks)


def _module(service: Service, module_name: str) -> Module:
    try:
        return service.session.module(module_name)
    except CourseError:
        released = ", ".join(m.folder for m in service.session.modules)
        raise Failure(404, f"module {module_name!r} is not open for submission here "
                      f"(open: {released})") from None


def _hourly(service: Service, student: str, module: Module) -> None:
    """:class:`Failure` 429 when ``student`` used up this hour's submissions of ``module``."""
    recent = service.store.count_since(student, module.folder, now() - timedelta(hours=1))
    limit = service.settings.submissions_per_hour
    if len(recent) >= limit:
        wait = (recent[0] + timedelta(hours=1) - now()).total_seconds()
        raise Failure(429, f"{limit} submissions of {module.folder} an hour is the "
                      f"course's limit: the next one is taken at "
                      f"{utc(recent[0] + timedelta(hours=1))}", wait)


def _busy(service: Service, waiting: int) -> Failure:
    return Failure(503, f"the grading service is busy ({waiting} submissions waiting): try "
                   "again shortly", service.grader.retry_after(waiting))


def before_body(service: Service, identity: Identity, module_name: str,
                key: str | None) -> tuple[Module, Attempt | None]:
    """What a submission needs before its notebook is read (cheap: the token and
    ``?module=``; in a worker thread): the module, and the attempt an Idempotency-Key
    already made, if any. :class:`Failure` for a module not open (404) or closed (403),
    a student whose notebooks were refused too often (429), the hourly limit (429) or a
    full queue (503)."""
    module = _module(service, module_name)
    student = identity.student
    closes = service.grader.closes(student, module.folder)
    if closes is not None and now() > closes:
        raise Failure(403, f"{module.folder} closed at {utc(closes)}: no more submissions "
                      "are taken (ask your instructor about an extension)")
    if key is not None:
        again = service.store.by_idempotency(student, key)
        if again is not None:
            return module, again
    wait = service.refusals.blocked(student)
    if wait is not None:
        raise Failure(429, f"{service.refusals.limit} of your notebooks were refused in the "
                      "last hour (see why in each answer): the next one is taken in "
                      f"{int(wait)} s", wait)
    _hourly(service, student, module)
    waiting = service.grader.waiting()
    if waiting >= service.settings.queue:
        raise _busy(service, waiting)
    return module, None


def _accept(service: Service, identity: Identity, module: Module, data: bytes,
            key: str | None, client: str) -> tuple[int, Attempt, bool]:
    """Check and accept a submission (in a worker thread); ``(status, attempt, new)``.

    The notebook is written, synced and checked under its student's lock only: one
    student's uploads never hold another's. A notebook refused here counts towards the
    student's refusals (``before_body`` answers 429 past them)."""
    student = identity.student
    with service.student_lock(student):
        if key is not None:
            again = service.store.by_idempotency(student, key)
            if again is not None:
                return 200, again, False
        try:
            checked = intake.receive(data, module, service.cells, service.incoming)
        except intake.Refused as exc:
            service.refusals.fail(student)
            raise Failure(exc.status, exc.message) from None
        keep = reserved = False
        try:
            latest = service.store.attempts(student, module.folder)
            last = latest[-1] if latest else None
            if last is not None and last.state != "failed" and \
                    last.code_digest == checked.code_digest:
                return 200, last, False
            _hourly(service, student, module)
            with service.accept_lock:  # a place in the queue, held until it is queued
                waiting = service.grader.waiting() + service.reserved
                if waiting >= service.settings.queue:
                    raise _busy(service, waiting)
                service.reserved += 1
                reserved = True
            when = now()
            stamp = Submission(student, module.folder, b"", when).timestamp() or b""
            folder = (f"service/attempts/{student}/{module.folder}/"
                      f"{when:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}")
            intake.keep(checked, service.session.root / folder, stamp)
            keep = True
            attempt_id = service.store.accept(
                student=student, module=module.folder, submitted_at=when, idempotency=key,
                sha256=hashlib.sha256(data).hexdigest(), code_digest=checked.code_digest,
                size=len(data), folder=folder, client=client[:80],
                feedback_key=FEEDBACK_PREFIX + secrets.token_hex(16),
                result=json.dumps({"notes": checked.notes}) if checked.notes else None)
            service.grader.add(attempt_id, (student, module.folder))
        finally:
            if reserved:
                with service.accept_lock:
                    service.reserved -= 1
            if not keep:
                shutil.rmtree(checked.folder, ignore_errors=True)
        attempt = service.store.attempt(attempt_id)
        assert attempt is not None
        return 202, attempt, True


def make_app(service: Service) -> Starlette:
    """The service's ASGI application."""

    async def guarded(request: Request, handler: Callable[..., Any]) -> Response:
        try:
            return await handler(request)
        except Failure as exc:
            return _error(exc.status, exc.message, exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - told to the instructor, not the student
            why = clean(f"{type(exc).__name__}: {exc}")[:500]
            path = clean(request.url.path)[:200]
            service.log(f"serve: ERROR in {request.method} {path}: {why}")
            service.request_errors.append({"at": utc(now()), "request": path, "error": why})
            return _error(500, "the grading service failed on this request; your instructor "
                          "is told. Try again later")

    async def submit(request: Request) -> Response:
        identity = await identify(service, request)
        module = request.query_params.get("module", "")
        if identity.role != "student":
            raise Failure(403, "an instructor's token submits nothing")
        course = request.headers.get("x-course")
        if course and service.slug and course != service.slug:
            raise Failure(422, f"this grading service grades the course {service.slug}, not "
                          f"{course}")
        if not module:
            raise Failure(400, "say which module this is: ?module=NN_name")
        key = request.headers.get("idempotency-key")
        if key is not None and (len(key) > 64 or not re.fullmatch(r"[A-Za-z0-9_.:-]+", key)):
            raise Failure(400, "Idempotency-Key: up to 64 letters, digits, '_', '.', ':' or "
                          "'-'")
        try:
            checked, again = await run_in_threadpool(before_body, service, identity, module,
                                                     key)
            if again is not None:
                status, attempt, new = 200, again, False
            else:
                with service.uploads.one(identity.token_id):
                    try:
                        data = await _body(request, service.settings.max_bytes)
                    except Failure:
                        service.refusals.fail(identity.student)
                        raise
                    status, attempt, new = await run_in_threadpool(
                        _accept, service, identity, checked, data, key, _address(request))
        except Failure as exc:
            service.log(f"serve: refused {identity.student} {module!r} ({exc.status}): "
                        f"{exc.message}")
            raise
        body = await run_in_threadpool(_describe, service, attempt)
        if not new:
            body["again"] = (f"the same notebook as your submission {attempt.id} of "
                             f"{utc(attempt.submitted_at)}: its result (not counted again)")
        return JSONResponse(body, status_code=status)

    async def attempts(request: Request) -> Response:
        identity = await identify(service, request)
        module = request.query_params.get("module")
        found = await run_in_threadpool(service.store.attempts, identity.student, module)
        return JSONResponse({"student": identity.student, "attempts": [
            {"attempt": a.id, "module": a.module, "submitted": utc(a.submitted_at),
             "state": a.state, "score": a.score, "max_score": a.max_score, "counts": a.counts}
            for a in found]})

    async def one(request: Request) -> Response:
        identity = await identify(service, request)
        attempt = await _own(request, identity)
        try:
            wait = min(MAX_WAIT, max(0.0, float(request.query_params.get("wait", "0"))))
        except ValueError:
            raise Failure(400, "wait: a number of seconds") from None
        if attempt.state in ("queued", "grading") and wait > 0:
            future = service.waiters.add(attempt.id)
            try:
                again = await run_in_threadpool(service.store.attempt, attempt.id)
                if again is not None and again.state in ("queued", "grading"):
                    try:
                        await asyncio.wait_for(asyncio.shield(future), wait)
                    except TimeoutError:
                        pass
            finally:
                service.waiters.remove(attempt.id, future)
            attempt = await run_in_threadpool(service.store.attempt, attempt.id) or attempt
        return JSONResponse(await run_in_threadpool(_describe, service, attempt))

    async def _own(request: Request, identity: Identity) -> Attempt:
        number = _number(request, "no such submission")
        attempt = await run_in_threadpool(service.store.attempt, number)
        if attempt is None or (identity.role == "student" and attempt.student !=
                               identity.student):
            raise Failure(404, f"no submission {number} of yours")
        return attempt

    async def feedback(request: Request) -> Response:
        number = _number(request, "no such feedback page")
        key = request.query_params.get("key", "")
        if not _KEY_RE.fullmatch(key):
            raise Failure(404, "no such feedback page")
        attempt = await run_in_threadpool(service.store.attempt, number)
        if attempt is None or not hmac.compare_digest(
                key.encode("ascii"), service.feedback_key(attempt).encode("ascii")):
            raise Failure(404, "no such feedback page")
        page = service.session.root / attempt.folder / "feedback.html"
        if not page.is_file():
            raise Failure(404, "this submission has no feedback page (yet)")
        return FileResponse(page, media_type="text/html; charset=utf-8", headers={
            "Content-Security-Policy": "default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'", "Cache-Control": "private, no-store"})

    async def instructor(request: Request) -> Identity:
        identity = await identify(service, request)
        if identity.role != "instructor":
            raise Failure(403, "the instructor's view: a student's token does not open it")
        return identity

    async def status(request: Request) -> Response:
        await instructor(request)
        data = service.grader.status()
        data["request_errors"] = list(service.request_errors)
        data.update({"course": service.slug, "gradebook": masked(service.session.groot.db_url),
                     "modules": [m.folder for m in service.session.modules],
                     "sandbox": service.session.options.sandbox,
                     "counts": service.settings.counts,
                     "submissions_per_hour": service.settings.submissions_per_hour})
        return JSONResponse(data)

    async def report(request: Request) -> Response:
        await instructor(request)
        folder = await run_in_threadpool(_report, service)
        name = request.path_params.get("name", "report.html")
        if name != "report.html" and not _CSV_RE.match(name):
            raise Failure(404, f"no such part of the report: {name}")
        path = folder / name
        if not path.is_file():
            raise Failure(404, f"no such part of the report: {name}")
        kind = "text/html; charset=utf-8" if name.endswith(".html") else "text/csv"
        return FileResponse(path, media_type=kind, headers={"Cache-Control": "no-store"})

    async def info(request: Request) -> Response:
        return JSONResponse({"service": "course grading service", "course": service.slug,
                             "modules": [m.folder for m in service.session.modules]})

    def route(path: str, handler: Callable[..., Any], methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await guarded(request, handler)
        return Route(path, endpoint, methods=methods)

    routes = [
        route("/api", info, ["GET"]),
        route("/api/submissions", submit, ["POST"]),
        route("/api/attempts", attempts, ["GET"]),
        route("/api/attempts/{number}", one, ["GET"]),
        route("/api/attempts/{number}/feedback", feedback, ["GET"]),
        route("/api/status", status, ["GET"]),
        route("/api/report", report, ["GET"]),
        route("/api/report/{name}", report, ["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.waiters.loop = asyncio.get_running_loop()
        yield
        service.waiters.loop = None

    return Starlette(routes=routes, lifespan=lifespan)


def _report(service: Service) -> Path:
    """The class report's folder, the report made again if it is older than a minute."""
    from coursekit.report import write_report

    folder = service.session.root / "service" / "report"
    page = folder / "report.html"
    with service.report_lock:
        if not page.is_file() or time.time() - page.stat().st_mtime > REPORT_AGE:
            write_report(service.course, out=folder, grading=service.session.root,
                         log=lambda line: None)
    return folder
