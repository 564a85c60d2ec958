"""Attacks from inside the kernel, graded in the sandbox with the seal (slow).

The notebook's code shares the interpreter with the tests; each case of
``corpus.seal_cases`` tries to earn points it did not, read the hidden tests, reach places
shared with the grader or the next kernel, or exceed a limit, and says what grading must
give. Graded once, with 2 workers, in a module-scoped fixture.
"""

from __future__ import annotations

import base64
import binascii
import csv
import html
import json
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.grading.grade import grade
from coursekit.leaks import secrets_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TOKEN_RE = re.compile(r"[A-Za-z0-9+/=_-]{24,}")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    course = Course(REPO)
    subs = tmp_path_factory.mktemp("seal-corpus")
    out = tmp_path_factory.mktemp("seal-grading")
    cases = corpus.write(course, subs, which="seal")
    lines: list[str] = []
    grade(course, subs, out=out, modules=[corpus.MODULE], workers=2,
          overrides=corpus.LIMITS, log=lines.append)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    source = json.loads((course.root / "source_notebooks" / corpus.MODULE
                         / "activations.ipynb").read_text())
    yield {"cases": {c.student: c for c in cases}, "out": out, "rows": rows, "log": lines,
           "hidden": [line for line in secrets_of(source).hidden if len(line.strip()) > 12]}


def test_seal_cases_score_as_stated(graded: dict) -> None:
    rows = graded["rows"]
    assert set(rows) == set(graded["cases"])
    wrong = corpus.mismatches(rows, graded["cases"])
    assert not wrong, "\n".join(wrong)


def test_honest_code_is_not_flagged(graded: dict) -> None:
    for student in ("honest_stderr", "honest_pool"):
        assert graded["rows"][student]["flagged"] == "", graded["rows"][student]


def _recoverable(text: str) -> str:
    """``text`` and everything base64/zlib-encoded in it, decoded as far as it goes."""
    found = [text]
    for token in TOKEN_RE.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(token + "=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            for data in (raw, _inflate(raw)):
                found.append(data.decode("utf-8", "replace"))
    return "\n".join(found)


def _inflate(raw: bytes) -> bytes:
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return b""


def test_nothing_of_the_hidden_tests_reaches_the_student(graded: dict) -> None:
    """Everything a student gets back (their feedback page, their grades.csv row) holds no
    hidden-test line, in clear or encoded; the pages of submissions caught tampering hold
    their failure messages back."""
    out: Path = graded["out"]
    hidden = graded["hidden"]
    assert len(hidden) > 10
    for student in graded["cases"]:
        page = out / "feedback" / student / corpus.MODULE / "activations.html"
        if not page.exists():
            continue
        text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))
        row = json.dumps(graded["rows"][student])
        everything = _recoverable(text) + _recoverable(row)
        leaked = [line for line in hidden if line.strip() in everything]
        assert not leaked, (student, leaked[:3])
    for student in ("attack_exfiltrate", "attack_frames"):
        page = (out / "feedback" / student / corpus.MODULE / "activations.html").read_text()
        assert "held back" in page
    # the attacks did get hold of it: the encoded text and the frame's constants are in what
    # the kernel printed and raised (kept in the instructor's autograded notebook)
    nb = json.loads((out / "autograded" / "attack_frames" / corpus.MODULE
                     / "activations.ipynb").read_text())
    raised = json.dumps([c.get("outputs") for c in nb["cells"]])
    assert "ValueError" in raised


def test_limits_and_isolation(graded: dict) -> None:
    out: Path = graded["out"]
    nb = json.loads((out / "autograded" / "attack_sessions" / corpus.MODULE
                     / "activations.ipynb").read_text())
    printed = json.dumps([c.get("outputs") for c in nb["cells"]])
    assert "setsid refused" in printed and "SETSID ALLOWED" not in printed
    nb = json.loads((out / "autograded" / "attack_namespaces" / corpus.MODULE
                     / "activations.ipynb").read_text())
    printed = json.dumps([c.get("outputs") for c in nb["cells"]])
    assert "inodes capped: No space left on device" in printed, printed[-600:]
    assert "userns refused" in printed and "USERNS ALLOWED" not in printed
    # escape codes from a process name reach grades.csv and the console only as text
    csv_text = (out / "grades.csv").read_text()
    assert "\x1b" not in csv_text and "\x07" not in csv_text
    assert not any("\x1b" in line for line in graded["log"])
    # nothing planted or left on the grading machine
    assert not list(out.rglob("planted")) and not Path("/dev/shm/planted").exists()
    running = []
    for entry in Path("/proc").iterdir():
        try:
            if b"corpus-escape" in (entry / "cmdline").read_bytes():
                running.append(entry.name)
        except OSError:
            continue
    assert running == []
    # every sandbox's folder is gone once grading is done
    assert not list((out / "workers").rglob("ck-sbx-*"))
