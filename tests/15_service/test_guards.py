"""The service's guards without a service process: who gets through the wrong-token limits,
how much checking a wrong secret may cost, odd input to the routes. The routes' own
functions are called with a request made here and a service holding only what they use
(a real token table in SQLite)."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import Request

from coursekit.service import app as service_app
from coursekit.service import tokens as service_tokens
from coursekit.service.app import Failure, Limiter, bucket, identify
from coursekit.service.store import Store
from coursekit.service.tokens import Verifier, issue

LIMIT = 3


def _request(address: str, token: str | None) -> Request:
    headers = [(b"authorization", f"Bearer {token}".encode("latin-1"))] if token else []
    return Request({"type": "http", "method": "GET", "path": "/api/attempts",
                    "query_string": b"", "headers": headers, "client": (address, 40000)})


@pytest.fixture()
def guarded(tmp_path: Path) -> Any:
    store = Store("sqlite:///" + str(tmp_path / "gradebook.db"))
    issued, _ = issue(store, [("ada", "", ""), ("ben", "", ""), ("cy", "", "")])
    pool = ThreadPoolExecutor(2)
    said: list[str] = []
    service = SimpleNamespace(verifier=Verifier(store), limiter=Limiter(LIMIT),
                              token_limiter=Limiter(LIMIT), scrypt_pool=pool, log=said.append,
                              tokens={i.student: i.token for i in issued}, said=said)
    try:
        yield service
    finally:
        pool.shutdown()
        store.close()


async def _who(service: Any, address: str, token: str | None) -> str | int:
    """The student a request is taken as, or the HTTP status it is refused with."""
    try:
        return (await identify(service, _request(address, token))).student
    except Failure as exc:
        return exc.status


def test_a_valid_token_gets_through_an_address_full_of_wrong_ones(guarded: Any) -> None:
    """A class behind one proxy: junk tokens from the shared address get it 429, and every
    valid token from it still gets through (checked for the first time or remembered)."""
    async def run() -> None:
        assert await _who(guarded, "10.0.0.1", guarded.tokens["ada"]) == "ada"  # remembered
        junk = [await _who(guarded, "10.0.0.1", f"tt1.{i:016x}.x") for i in range(LIMIT + 2)]
        assert junk == [401] * LIMIT + [429, 429]
        assert await _who(guarded, "10.0.0.1", guarded.tokens["ben"]) == "ben"  # first check
        assert await _who(guarded, "10.0.0.1", guarded.tokens["ada"]) == "ada"
        assert await _who(guarded, "10.0.0.1", "tt1.ffffffffffffffff.x") == 429
        assert await _who(guarded, "10.0.0.2", "tt1.ffffffffffffffff.x") == 401  # elsewhere

    asyncio.run(run())


def test_wrong_secrets_for_one_token_cost_few_checks(guarded: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrong secrets for a real token id, sent at once from many addresses: the id's secret
    is checked (scrypt) at most ``wrong_tokens`` times, every other answer is 429 without a
    check; its owner's token, checked before, still gets through."""
    checks: list[str] = []
    real = service_tokens._hash

    def counted(secret: str, salt: bytes) -> str:
        checks.append(secret)
        return real(secret, salt)

    monkeypatch.setattr(service_tokens, "_hash", counted)

    async def run() -> None:
        ada = guarded.tokens["ada"]
        assert await _who(guarded, "192.0.2.1", ada) == "ada"
        head = ada.rsplit(".", 1)[0]
        answers = await asyncio.gather(*(_who(guarded, f"198.51.100.{i}", f"{head}.wrong{i}")
                                         for i in range(40)))
        assert sorted(set(answers)) == [401, 429]
        assert answers.count(401) == LIMIT and len(checks) == 1 + LIMIT
        assert await _who(guarded, "198.51.100.77", ada) == "ada"  # remembered: no check
        assert len(checks) == 1 + LIMIT
        # another student's token is not touched by it
        assert await _who(guarded, "198.51.100.78", guarded.tokens["cy"]) == "cy"

    asyncio.run(run())


def test_an_ipv6_network_is_one_address() -> None:
    assert bucket("2001:db8:1:2::1") == bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert bucket("2001:db8:1:3::1") != bucket("2001:db8:1:2::1")
    assert bucket("::ffff:198.51.100.7") == "198.51.100.7" == bucket("198.51.100.7")
    assert bucket("unknown") == "unknown"
    limiter = Limiter(2)
    for host in ("2001:db8::1", "2001:db8::2"):
        limiter.fail(bucket(host))
    assert limiter.blocked(bucket("2001:db8::3")) is not None
    assert limiter.blocked(bucket("2001:db8:0:1::3")) is None


def test_the_limiter_counts_before_the_check() -> None:
    """``take`` counts under one lock: of many at once only ``limit`` pass; a failure given
    back (the check passed) frees its place."""
    limiter = Limiter(5, window=600)
    with ThreadPoolExecutor(8) as pool:
        passed = [w is None for w in pool.map(lambda _: limiter.take("k"), range(50))]
    assert sum(passed) == 5
    wait = limiter.take("k")
    assert wait is not None and 1 <= wait <= 600
    limiter.give_back("k")
    assert limiter.take("k") is None
    assert service_app.BAD_WINDOW == 600


# -- taking a submission ---------------------------------------------------------------------


class _Grader:
    """What the accepting side asks of the grading side: the queue, when a module closes."""

    def __init__(self) -> None:
        self.queued: list[int] = []
        self.on_change: Any = None

    def closes(self, student: str, module: str) -> None:
        return None

    def waiting(self) -> int:
        return len(self.queued)

    def full(self) -> float | None:
        return None if len(self.queued) < 1 else 5.0

    def retry_after(self, waiting: int) -> float:
        return 5.0

    def add(self, attempt_id: int, key: tuple[str, str]) -> None:
        self.queued.append(attempt_id)


def test_one_students_slow_upload_holds_nobody_else(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """While one student's notebook is being written and checked (here: held until told),
    another student's submission is accepted; the queue's last place goes to one of two;
    the notebook refused counts towards its student's refusals."""
    import threading

    import servicetools as st

    from coursekit.course import Course
    from coursekit.handin import ServiceSettings
    from coursekit.service import intake
    from coursekit.service.app import Service, _accept
    from coursekit.service.tokens import Identity

    (module,) = Course(st.REPO).select(["01"])
    entered, release = threading.Event(), threading.Event()

    def receive(data: bytes, module: Any, cells: Any, incoming: Path) -> intake.Checked:
        if data == b"slow":
            entered.set()
            release.wait(60)
            raise intake.Refused(422, "not this module's notebook")
        folder = incoming / data.decode()
        folder.mkdir(parents=True)
        return intake.Checked(folder, folder / module.notebook_name, data.decode() * 8)

    monkeypatch.setattr(intake, "receive", receive)
    monkeypatch.setattr(intake, "keep", lambda checked, dest, stamp: dest.mkdir(parents=True))
    store = Store("sqlite:///" + str(tmp_path / "gradebook.db"))
    session = SimpleNamespace(root=tmp_path, module=lambda name: module, modules=[module])
    service = Service(None, session, store, _Grader(),  # type: ignore[arg-type]
                      ServiceSettings(queue=1), {}, "")
    ada, ben, cy = (Identity(f"{i:016x}", s, "student") for i, s in enumerate(["ada", "ben",
                                                                                 "cy"]))
    outcome: dict[str, Any] = {}

    def send(who: Identity, data: bytes) -> None:
        try:
            outcome[who.student] = _accept(service, who, module, data, None, "10.0.0.1")[0]
        except Failure as exc:
            outcome[who.student] = exc.status

    slow = threading.Thread(target=send, args=(ada, b"slow"))
    slow.start()
    try:
        assert entered.wait(60)
        other = threading.Thread(target=send, args=(ben, b"good"))
        other.start()
        other.join(60)
        assert not other.is_alive() and outcome["ben"] == 202, outcome
        send(cy, b"also")  # the queue (1 place) is full
        assert outcome["cy"] == 503
    finally:
        release.set()
        slow.join(60)
        store.close()
    assert outcome["ada"] == 422
    assert service.refusals.blocked("ada") is None and len(service.refusals._fails["ada"]) == 1
    assert "ben" not in service.refusals._fails


# -- slow clients ----------------------------------------------------------------------------


def test_slow_clients_are_cut_off(tmp_path: Path) -> None:
    """uvicorn with the service's protocol (a head deadline, here 1 s) and the service's way
    of reading a body (a deadline, here 1 s): a connection that sends nothing, or half a
    request line and headers, is closed; a body that does not come is answered 408; an
    ordinary request is answered."""
    import threading

    import servicetools as st
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from coursekit.service.app import _body
    from coursekit.service.serve import http_protocol

    async def upload(request: Request) -> JSONResponse:
        try:
            data = await _body(request, 1000, seconds=1.0)
        except Failure as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return JSONResponse({"size": len(data)})

    port = st.free_port()
    server = uvicorn.Server(uvicorn.Config(
        Starlette(routes=[Route("/up", upload, methods=["POST"])]), host="127.0.0.1",
        port=port, log_level="warning", http=http_protocol(1.0), lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started
        idle = socket.create_connection(("127.0.0.1", port), timeout=30)
        half = socket.create_connection(("127.0.0.1", port), timeout=30)
        half.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        half.sendall(b"X-A: 1\r\n")
        no_body = st.send_part(port, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10",
                               b"12")
        fine = st.send_part(port, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3"
                            "\r\nConnection: close", b"abc")
        for sock in (idle, half):
            with sock:
                assert st.answer(sock, timeout=20) == (0, b"")  # closed, nothing said
        with no_body:
            status, got = st.answer(no_body, timeout=20)
        assert status == 408 and b"did not arrive within 1 s" in got
        with fine:
            status, got = st.answer(fine, timeout=20)
        assert status == 200 and got.endswith(b'{"size":3}')
    finally:
        server.should_exit = True
        thread.join(30)


# -- the queue -------------------------------------------------------------------------------


def test_the_queue_takes_students_in_turn(tmp_path: Path) -> None:
    """One student's three modules and two other students' one each, in that order, with
    two grading processes (one attempt of a student at once): the others' first attempts
    are taken before the first student's second; the positions say so."""
    import servicetools as st

    from coursekit.course import Course
    from coursekit.handin import ServiceSettings
    from coursekit.service.attempts import Grader

    course = Course(st.REPO)
    session = SimpleNamespace(groot=None, course=course, modules=course.modules(),
                              options=SimpleNamespace(workers=2), cluster=None)
    grader = Grader(session, None, ServiceSettings(), {}, None,  # type: ignore[arg-type]
                    log=lambda line: None)
    order = [(1, "eve", "01_tensor"), (2, "eve", "02_activations"), (3, "eve", "03_layers"),
             (4, "ada", "01_tensor"), (5, "ben", "01_tensor")]
    for attempt, student, module in order:
        grader.add(attempt, (student, module))
    assert grader.per_student == 1
    assert [grader.position(a) for a in (1, 4, 5, 2, 3)] == [1, 2, 3, 4, 5]
    first = grader._take(1)
    second = grader._take(1)
    assert [t.attempt for t in first + second] == [1, 4]  # eve's second waits: eve grades
    assert [grader.position(a) for a in (5, 2, 3)] == [1, 2, 3]
    grader._release(first)
    assert [t.attempt for t in grader._take(2)] == [5, 2]
    grader._release(second)
    assert grader.position(3) == 1
    eight = Grader(SimpleNamespace(**{**vars(session), "options": SimpleNamespace(workers=8)}),
                   None, ServiceSettings(), {}, None)  # type: ignore[arg-type]
    assert eight.per_student == 2
