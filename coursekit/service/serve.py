"""``course serve``: run the grading service, and ``course tokens``: who may use it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from coursekit import handin, settings
from coursekit.course import Course, CourseError
from coursekit.grading.execution import sandbox as sb
from coursekit.grading.records import database
from coursekit.grading.records.results import default_workers
from coursekit.grading.records.root import ROOT_CONFIG, choose_gradebook, open_root
from coursekit.grading.session import GradingOptions, GradingSession
from coursekit.released import released_modules
from coursekit.service import intake, tokens
from coursekit.service.app import Service, make_app
from coursekit.service.attempts import Grader
from coursekit.service.store import Store


HEAD_SECONDS = 20.0  # a request's line and headers must have come within this long
LIMIT_CONNECTIONS = 1000  # connections at once; a request past them is answered 503
KEEP_ALIVE = 5  # seconds an idle connection is kept open after an answer


def http_protocol(head_seconds: float = HEAD_SECONDS) -> type:
    """uvicorn's HTTP/1.1 protocol (h11) with a deadline for a request's head: a connection
    whose request line and headers have not all come ``head_seconds`` after it opened (or
    after its last answer) is closed. uvicorn has no such deadline of its own, so idle,
    half-sent requests could hold every connection (slowloris); the body has its own
    deadline in the application."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadDeadline(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # the head is in
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(head_seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _too_slow(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeadDeadline


def raise_file_limit(log: Callable[[str], None]) -> None:
    """Raise the soft limit of open files to the hard one (systemd's default soft limit,
    1024, is about what :data:`LIMIT_CONNECTIONS` needs alone); say so when it stays low."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
            soft = max(soft, wanted)
        except (ValueError, OSError):
            pass
    if soft < 2 * LIMIT_CONNECTIONS:
        log(f"serve: only {soft} open files allowed (ulimit -n): raise it, e.g. "
            "LimitNOFILE=65536 in the systemd unit")


def stamped(line: str) -> None:
    """Print a log line with the time (one line per event, as it happens)."""
    print(f"{datetime.now():%Y-%m-%d %H:%M:%S} {line}", flush=True)


def _slug(course: Course) -> str:
    """The student repository the course publishes (``[student_repository] slug``), which
    a submission names; empty when it is not set (then any is taken)."""
    value = settings.table(course, "student_repository").get("slug")
    return value if isinstance(value, str) else ""


def grading_root(course: Course, grading: Path | None) -> Path:
    """The grading root the service grades into (default ``grading/``)."""
    return (grading or course.root / "grading").resolve()


def build(course: Course, *, grading: Path | None = None, db_url: str | None = None,
          workers: int | None = None, scheduler: str | None = None,
          submissions: Path | None = None, sandbox: bool = True,
          log: Callable[[str], None] = stamped) -> Service:
    """Open the grading session (grading processes started, kept warm) and the service's
    tables; the service, its grading threads started (the caller closes it with
    :func:`close`)."""
    service_settings = handin.read(course)
    modules = released_modules(course)
    if not modules:
        raise CourseError(f"{course.root}/modules: no module files found")
    if scheduler is not None and workers is not None:
        raise CourseError(f"--workers {workers} and --scheduler {scheduler}: give one of them "
                          "(with --scheduler the Dask workers grade)")
    n = default_workers() if workers is None else workers
    if n < 1 and scheduler is None:
        raise CourseError(f"--workers {n}: the service grades in worker processes; give 1 or "
                          "more")
    if scheduler is not None:
        from coursekit.grading.dispatch.cluster import check_address

        check_address(scheduler)
    root = grading_root(course, grading)
    url = database.check(db_url) if db_url else None
    url = choose_gradebook(root, url, switch_option="", who="serve", log=log)
    if sandbox and scheduler is None:
        sb.probe(course, modules[-1])
    options = GradingOptions(sandbox=sandbox, feedback=True,
                             workers=0 if scheduler is not None else n, scheduler=scheduler)
    session = GradingSession(course, root, db_url=url, modules=modules, options=options,
                             log=log)
    store: Store | None = None
    try:
        session.open()
        own = root / "service"  # attempts, feedback pages: the owner's alone
        own.mkdir(parents=True, exist_ok=True)
        own.chmod(0o700)
        store = Store(session.groot.db_url)
        cells = intake.module_cells(modules)
        folder = submissions.resolve() if submissions else root / "submissions"
        grader = Grader(session, store, service_settings, cells, folder, log)
        service = Service(course, session, store, grader, service_settings, cells,
                          _slug(course), log)
        again = grader.start()
        if again:
            log(f"serve: {again} accepted submission(s) not graded when the service last "
                "stopped: queued again")
        return service
    except BaseException:
        if store is not None:
            store.close()
        session.close()
        raise


def close(service: Service) -> None:
    """Stop grading (what is being graded is finished), write grades.csv, stop the
    grading processes."""
    try:
        service.grader.stop()
    finally:
        service.scrypt_pool.shutdown(wait=False)
        service.session.close()
        service.store.close()


def serve(course: Course, *, host: str = "127.0.0.1", port: int = 8000,
          grading: Path | None = None, db_url: str | None = None,
          workers: int | None = None, scheduler: str | None = None,
          submissions: Path | None = None, sandbox: bool = True,
          ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
          forwarded_allow_ips: str | None = None, access_log: bool = False,
          log: Callable[[str], None] = stamped) -> int:
    """Run the grading service until it is stopped (Ctrl-C or SIGTERM); the exit code.
    What it creates (attempts, feedback pages, a new gradebook) is readable by its owner
    alone."""
    previous = os.umask(0o077)
    try:
        return _serve(course, host=host, port=port, grading=grading, db_url=db_url,
                      workers=workers, scheduler=scheduler, submissions=submissions,
                      sandbox=sandbox, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                      forwarded_allow_ips=forwarded_allow_ips, access_log=access_log, log=log)
    finally:
        os.umask(previous)


def _serve(course: Course, *, host: str, port: int, grading: Path | None, db_url: str | None,
           workers: int | None, scheduler: str | None, submissions: Path | None,
           sandbox: bool, ssl_certfile: str | None, ssl_keyfile: str | None,
           forwarded_allow_ips: str | None, access_log: bool,
           log: Callable[[str], None]) -> int:
    import uvicorn

    if not 0 < port < 65536:
        raise CourseError(f"--port {port}: expected 1 to 65535")
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise CourseError("--ssl-certfile and --ssl-keyfile go together (uvicorn's own TLS)")
    for option, path in (("--ssl-certfile", ssl_certfile), ("--ssl-keyfile", ssl_keyfile)):
        if path and not Path(path).is_file():
            raise CourseError(f"{option} {path}: no such file")
    check_address(host, port)
    service = build(course, grading=grading, db_url=db_url, workers=workers,
                    scheduler=scheduler, submissions=submissions, sandbox=sandbox, log=log)
    try:
        chosen = service.settings
        scheme = "https" if ssl_certfile else "http"
        where = (f"Dask scheduler {scheduler}" if scheduler
                 else f"{service.grader.workers} grading process(es)")
        log(f"serve: {service.slug}, modules {', '.join(m.folder for m in service.session.modules)}"
            f" at {scheme}://{host}:{port} ({where}, gradebook "
            f"{database.masked(service.session.groot.db_url)}; {chosen.submissions_per_hour} "
            f"submissions per student and module an hour, queue {chosen.queue}, counts: "
            f"{chosen.counts}){'' if service.session.options.sandbox else ' WITHOUT SANDBOX'}")
        if not chosen.url:
            log("serve: course.toml [service] url is not set: the Submit cells of the "
                "published notebooks do not know this service's address yet")
        raise_file_limit(log)
        config: dict[str, Any] = {
            "host": host, "port": port, "log_level": "warning", "access_log": access_log,
            "lifespan": "on", "timeout_graceful_shutdown": 30, "http": http_protocol(),
            "limit_concurrency": LIMIT_CONNECTIONS, "timeout_keep_alive": KEEP_ALIVE,
            "proxy_headers": forwarded_allow_ips is not None,
            "forwarded_allow_ips": forwarded_allow_ips or "127.0.0.1",
        }
        if ssl_certfile:
            config.update(ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
        server = uvicorn.Server(uvicorn.Config(make_app(service), **config))
        # uvicorn stops on SIGINT or SIGTERM, then sends itself the signal again: answered
        # here, so that the grading started is finished and grades.csv written either way
        previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run()
        except _Stop:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0 if server.started else 1
    finally:
        log("serve: stopping (what is being graded is finished first)")
        close(service)
        log("serve: stopped")


def check_address(host: str, port: int) -> None:
    """A :class:`CourseError` when the service could not listen on ``host:port`` (before
    the grading processes are started for nothing)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CourseError(f"--host {host}: not an address of this machine ({exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise CourseError(f"--port {port}: cannot listen on {host}:{port} "
                              f"({exc.strerror or exc}); is another service there?") from None


class _Stop(Exception):
    """The service was told to stop (after uvicorn's graceful shutdown)."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stop()


def token_store(course: Course, grading: Path | None, db_url: str | None) -> Store:
    """The service's tables of the grading root's gradebook (a new grading root records
    ``db_url``, as ``course grade`` does)."""
    root = grading_root(course, grading)
    url = database.check(db_url) if db_url else None
    url = choose_gradebook(root, url, switch_option="", who="tokens")
    if not (root / ROOT_CONFIG).is_file():
        open_root(course, root, url)
    return Store(url)


def write_secret_csv(path: Path, text: str) -> None:
    """Write tokens to ``path``, readable by its owner alone."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def run_tokens(course: Course, *, roster: Path | None, students: list[str],
               instructor: str | None, revoke: list[str], reissue: bool, listing: bool,
               grading: Path | None, db_url: str | None, out: Path | None) -> int:
    """``course tokens``: issue, reissue, revoke or list tokens (a gradebook it creates is
    readable by its owner alone)."""
    previous = os.umask(0o077)
    try:
        return _tokens(course, roster=roster, students=students, instructor=instructor,
                       revoke=revoke, reissue=reissue, listing=listing, grading=grading,
                       db_url=db_url, out=out)
    finally:
        os.umask(previous)


def _tokens(course: Course, *, roster: Path | None, students: list[str],
            instructor: str | None, revoke: list[str], reissue: bool, listing: bool,
            grading: Path | None, db_url: str | None, out: Path | None) -> int:
    store = token_store(course, grading, db_url)
    try:
        if listing:
            rows = store.tokens()
            live = [t for t in rows if t.revoked_at is None]
            print(f"tokens: {len(live)} valid, {len(rows) - len(live)} revoked")
            for t in rows:
                state = "revoked " + t.revoked_at.isoformat(timespec="minutes") \
                    if t.revoked_at else "valid"
                print(f"  {t.student:<24} {t.role:<10} {t.id}  issued "
                      f"{t.created_at.isoformat(timespec='minutes')}Z  {state}")
            return 0
        if revoke:
            missing = []
            for student in revoke:
                n = store.revoke(student, tokens.now())
                if n:
                    print(f"tokens: {student}: {n} token(s) revoked (they stop at once)")
                else:
                    missing.append(student)
            if missing:
                raise CourseError(f"--revoke {missing[0]}: has no valid token (course tokens "
                                  "--list lists them)")
            return 0
        wanted: list[tuple[str, str, str]] = []
        if instructor:
            issued, _ = tokens.issue(store, [(instructor, "", "")], reissue=reissue,
                                     role="instructor")
            if not issued:
                raise CourseError(f"--instructor {instructor}: has a valid token already; "
                                  "--reissue makes a new one (the old one stops)")
        else:
            if roster is not None:
                from coursekit.lms.roster import load

                people = load(roster)
                known = {p.student: p for p in people.people}
                for person in people.people:
                    if not students or person.student in students:
                        wanted.append((person.student, person.name, person.email))
                unknown = [s for s in students if s not in known]
                if unknown:
                    raise CourseError(f"--student {unknown[0]}: not in the roster {roster}")
            else:
                wanted = [(s, "", "") for s in students]
            if not wanted:
                raise CourseError("give --roster CSV (a token for every student in it) or "
                                  "--student ID, or --instructor NAME, --revoke ID, --list")
            issued, skipped = tokens.issue(store, wanted, reissue=reissue)
            if skipped:
                print(f"tokens: {len(skipped)} student(s) have a valid token already (kept; "
                      f"--reissue replaces them): {', '.join(skipped[:10])}"
                      f"{' ...' if len(skipped) > 10 else ''}", file=sys.stderr)
        text = tokens.as_csv(issued)
        if out is not None:
            write_secret_csv(out, text)
            print(f"tokens: {len(issued)} token(s) written to {out} (only you can read it; "
                  "they are shown once and stored hashed)", file=sys.stderr)
        else:
            sys.stdout.write(text)
            print(f"tokens: {len(issued)} token(s) above, shown once (stored hashed): send "
                  "each student their own", file=sys.stderr)
        return 0
    finally:
        store.close()
