"""The service's parts without grading: the [service] settings, what ``course publish``
carries to the students, the Submit cell when a tool runs it, the client against a service
that cannot be reached, tokens, which attempt counts, what a notebook's code is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import servicetools as st
from hypothesis import given, settings
from hypothesis import strategies as hs

from coursekit import handin
from coursekit.course import Course, CourseError
from coursekit.service.attempts import choose
from coursekit.service.intake import code_digest
from coursekit.service.store import Attempt, Store
from coursekit.service.tokens import Verifier, issue, new_token, now


def _course(tmp_path: Path, service: str) -> Any:
    return st.make_course(tmp_path / "course", f"""
[student_repository]
slug = "your-org/tinytorch"
through = "01"
{service}
""")


@pytest.mark.parametrize(("table", "says"), [
    ('url = "ftp://x"', "expected the grading service's address"),
    ('url = "http://grading.example.edu/tinytorch"', "http:// would send every student's "
     "token unencrypted; use https://"),
    ('counts = "first"', "expected one of 'last', 'best'"),
    ("submissions_per_hour = 0", "expected a whole number above 0"),
    ("queue = 2.5", "expected a whole number above 0"),
    ('closes = "soon"', "expected one of 'late_window', 'due', 'never'"),
    ("speed = 3", "unknown key(s) speed"),
])
def test_bad_settings_are_named(tmp_path: Path, table: str, says: str) -> None:
    course = _course(tmp_path, f"[service]\n{table}\n")
    with pytest.raises(CourseError, match=r"course\.toml \[service\]") as err:
        handin.read(course)
    assert says in str(err.value)


def test_publish_carries_the_service_url(tmp_path: Path) -> None:
    from coursekit.publishing.publish import publish

    url = "https://grading.example.edu/tinytorch"
    course = _course(tmp_path, f'[service]\nurl = "{url}/"\n')
    repo = tmp_path / "repo"
    publish(course, repo, "01", preview=True, log=lambda line: None)
    namespace: dict[str, Any] = {}
    exec((repo / "tinytorch" / "handin.py").read_text(), namespace)  # noqa: S102
    assert namespace["SERVICE_URL"] == url and namespace["COURSE"] == "your-org/tinytorch"
    readme = (repo / "README.md").read_text()
    assert "With the Submit cell" in readme and url in readme
    assert (repo / "tinytorch" / "submit.py").read_bytes() == \
        (st.REPO / "tinytorch" / "submit.py").read_bytes()
    plain = _course(tmp_path / "plain", "")
    publish(plain, tmp_path / "repo2", "01", preview=True, log=lambda line: None)
    namespace = {}
    exec((tmp_path / "repo2" / "tinytorch" / "handin.py").read_text(), namespace)  # noqa: S102
    assert namespace["SERVICE_URL"] is None and namespace["HAND_IN"] == handin.DEFAULT_HAND_IN
    assert "With the Submit cell" not in (tmp_path / "repo2" / "README.md").read_text()


def test_the_submit_cell_run_by_a_tool_sends_nothing(tmp_path: Path) -> None:
    """Outside a notebook a person runs (a script, nbgrader's grader or Validate, an
    export), the cell prints one line; the service it names is never called."""
    cell = next(c for c in st.untouched(Course(st.REPO), "01_tensor")["cells"]
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "tensor_submit")
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    assert source.endswith('tinytorch.submit_for_grading("01_tensor")')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(st.REPO),
           "TINYTORCH_SERVICE_URL": f"http://127.0.0.1:{st.free_port()}"}
    done = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "Submit for grading: nothing sent (this notebook is being run by a tool, not opened "
        "by you)."]
    assert not (tmp_path / ".tinytorch").exists()


def test_an_unreachable_service_is_tried_again_then_named(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    from tinytorch import submit as client

    url = f"http://127.0.0.1:{st.free_port()}"  # nothing listens there
    monkeypatch.setenv(client.URL_ENV, url)
    monkeypatch.setenv(client.HOME_ENV, str(tmp_path))
    said: list[str] = []
    waits: list[float] = []

    class Collect(client.Reporter):
        def status(self, text: str) -> None:
            said.append(text)

        def error(self, text: str) -> None:
            said.append("ERROR " + text)

    result = client.submit(b"{}", "01_tensor", Collect(), lambda: "tt1.x.y", waits.append)
    assert result is None
    assert len(waits) == client.TRIES - 1 and waits == sorted(waits)  # longer each time
    assert said[-1].startswith(f"ERROR The grading service at {url} cannot be reached")
    assert sum("trying again" in line for line in said) == client.TRIES - 1
    assert not (tmp_path / "tokens.json").exists()  # a token not accepted is not kept


def test_tokens_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    store = Store("sqlite:///" + str(tmp_path / "gradebook.db"))
    try:
        issued, skipped = issue(store, [("ada", "Ada L", "ada@x"), ("ben", "", "")])
        assert [i.student for i in issued] == ["ada", "ben"] and skipped == []
        again, skipped = issue(store, [("ada", "", "")])
        assert again == [] and skipped == ["ada"]
        verifier = Verifier(store)
        text = issued[0].token
        assert verifier.check(text).student == "ada"
        assert verifier.check(text).student == "ada"  # remembered, still checked for revocation
        head, secret = text.rsplit(".", 1)
        other = "B" if secret.endswith("A") else "A"  # a secret one letter off
        assert verifier.check(f"{head}.{secret[:-1]}{other}") is None
        assert verifier.check(issued[1].token.rsplit(".", 1)[0] + "." + secret) is None
        for junk in ("", "tt1", "tt1..", "Bearer x", "tt1.zz.y"):
            assert verifier.check(junk) is None
        stored = store.tokens("ada")[0]
        assert secret not in stored.hash and secret not in stored.salt
        reissued, _ = issue(store, [("ada", "", "")], reissue=True)
        assert verifier.check(text) is None  # the old one stops at once
        assert verifier.check(reissued[0].token).student == "ada"
        store.revoke("ada", now())
        assert verifier.check(reissued[0].token) is None
        with pytest.raises(CourseError, match="student '../x'"):
            new_token("../x")
    finally:
        store.close()


def _attempt(n: int, at: datetime, score: float) -> Attempt:
    return Attempt(n, "ada", "01_tensor", at, None, "", "", 0, "", "", "done", None, None,
                   None, score, 14.0, False, None, "", None, None)


def test_which_attempt_counts() -> None:
    due = datetime(2026, 2, 6, 23, 59)
    early = _attempt(1, due - timedelta(days=1), 14)
    later = _attempt(2, due - timedelta(hours=1), 9)
    late = _attempt(3, due + timedelta(hours=2), 12)
    assert choose([early, later, late], "last", due) is later
    assert choose([late], "last", due) is late  # none on time: the last of all
    assert choose([early, later, late], "last", None) is late
    assert choose([early, later, late], "best", due) is early
    tie = _attempt(4, due + timedelta(days=1), 14)
    assert choose([early, later, tie], "best", due) is tie  # equal: the later one
    with pytest.raises(ValueError):
        choose([], "best", due)


_cell = hs.fixed_dictionaries({
    "cell_type": hs.sampled_from(["code", "markdown"]),
    "source": hs.text(max_size=40),
    "outputs": hs.lists(hs.fixed_dictionaries({"output_type": hs.just("stream"),
                                               "text": hs.text(max_size=20)}), max_size=2),
    "execution_count": hs.none() | hs.integers(1, 99),
    "metadata": hs.dictionaries(hs.sampled_from(["collapsed", "scrolled"]), hs.booleans()),
})


@settings(max_examples=60, deadline=None)
@given(hs.lists(_cell, min_size=1, max_size=6), hs.data())
def test_a_notebooks_code_is_its_cells_not_their_outputs(cells: list[dict[str, Any]],
                                                         data: hs.DataObject) -> None:
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    rerun = json.loads(json.dumps(nb))
    for cell in rerun["cells"]:
        cell["outputs"], cell["execution_count"], cell["metadata"] = [], None, {"x": 1}
        cell["source"] = [cell["source"]]  # saved as a list of lines
    assert code_digest(rerun) == code_digest(nb)
    i = data.draw(hs.integers(0, len(cells) - 1))
    changed = json.loads(json.dumps(nb))
    changed["cells"][i]["source"] += data.draw(hs.text(min_size=1, max_size=5))
    assert code_digest(changed) != code_digest(nb)


def test_commands_name_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`course serve` and `course tokens`: one line naming the argument, exit code 1."""
    import socket

    from coursekit.cli import main

    root = ["--root", str(st.REPO)]
    grading = ["--grading", str(tmp_path / "grading")]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["serve", "--port", "0"], "--port 0: expected 1 to 65535"),
            (["serve", "--port", str(port), *grading], f"--port {port}: cannot listen on"),
            (["serve", "--workers", "0", "--port", str(st.free_port()), *grading],
             "--workers 0: the service grades in worker processes"),
            (["serve", "--ssl-certfile", str(tmp_path / "none.pem"), "--ssl-keyfile", "k"],
             "none.pem: no such file"),
            (["tokens", *grading], "give --roster CSV"),
            (["tokens", *grading, "--revoke", "nobody"], "--revoke nobody: has no valid token"),
            (["tokens", *grading, "--student", "no/pe"], "student 'no/pe'"),
        ]
        for args, says in cases:
            assert main([*root, *args]) == 1, args
            err = capsys.readouterr().err
            assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "grading" / "service").exists()  # refused before any grading


def test_tokens_for_a_roster_are_shown_once(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`course tokens --roster`: a token for every student of the roster, as CSV with their
    name and email, written once (mode 0600 with --out); again, only for those without one;
    the gradebook's database holds none of them."""
    import csv
    import io
    import stat

    from coursekit.cli import main

    roster = tmp_path / "roster.csv"
    roster.write_text("student,name,email\nada,Ada Lovelace,ada@uni.example\n"
                      "ben,Ben Franklin,ben@uni.example\n")
    args = ["--root", str(st.REPO), "tokens", "--grading", str(tmp_path / "grading"),
            "--roster", str(roster)]
    out = tmp_path / "tokens.csv"
    outer = os.umask(0o022)  # the usual one: files readable by all
    try:
        assert main([*args, "--out", str(out)]) == 0
        assert os.umask(0o022) == 0o022  # the command's own umask ended with it
    finally:
        os.umask(outer)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["student"], r["name"], r["email"]) for r in rows] == [
        ("ada", "Ada Lovelace", "ada@uni.example"), ("ben", "Ben Franklin", "ben@uni.example")]
    assert all(r["token"].startswith("tt1.") for r in rows)
    capsys.readouterr()
    roster.write_text(roster.read_text() + "cy,Cy Young,cy@uni.example\n")
    assert main(args) == 0
    printed = capsys.readouterr()
    again = list(csv.DictReader(io.StringIO(printed.out)))
    assert [r["student"] for r in again] == ["cy"] and "have a valid token already" in printed.err
    gradebook = tmp_path / "grading" / "gradebook.db"
    assert gradebook.stat().st_mode & 0o077 == 0  # the owner's alone, whatever the umask
    db = gradebook.read_bytes()
    for row in [*rows, *again]:
        assert row["token"].split(".")[2].encode() not in db


def test_the_client_sends_its_token_to_the_service_only(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    """A redirect from the service is not followed (urllib would carry the token to its
    target), and an http:// address off this machine gets nothing at all."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tinytorch import submit as client

    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's name
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    target = f"http://localhost:{other.server_address[1]}/steal"

    class Redirecting(Elsewhere):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302 if self.command == "GET" else 307)
            self.send_header("Location", target)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

    service = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    servers = [threading.Thread(target=s.serve_forever, daemon=True) for s in (other, service)]
    for thread in servers:
        thread.start()
    try:
        base = f"http://127.0.0.1:{service.server_address[1]}"
        for method, body in (("GET", None), ("POST", b"{}")):
            answer = client.call(method, f"{base}/api/attempts", token="tt1.x.SECRET",
                                 body=body)
            assert 300 <= answer.status < 400 and "redirect" in answer.message
            assert target in answer.message
        assert seen == []  # nothing reached the redirect's target
        monkeypatch.setenv(client.URL_ENV, "http://grading.example.edu/tinytorch")
        said: list[str] = []

        class Collect(client.Reporter):
            def status(self, text: str) -> None:
                said.append(text)

            def error(self, text: str) -> None:
                said.append("ERROR " + text)

        assert client.submit(b"{}", "01_tensor", Collect(), lambda: "tt1.x.y") is None
        assert said and said[-1].startswith("ERROR The grading service's address "
                                            "http://grading.example.edu/tinytorch is not "
                                            "https://")
        assert client.unsafe_url("http://[::1]:8000") is None
        assert client.unsafe_url("https://grading.example.edu") is None
    finally:
        for server in (other, service):
            server.shutdown()
            server.server_close()
