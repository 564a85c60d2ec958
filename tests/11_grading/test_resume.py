"""The same ``course grade`` again grades only what is missing or changed; ``--regrade``
grades everything (slow: grades module 01 of the example class, locally)."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.grading.grade import grade

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "submissions"
PROGRESS = re.compile(r"^grade \[\d+/\d+\] (\S+) (\S+): ")


def run(subs: Path, out: Path, **kw: object) -> tuple[list[str], list[str]]:
    """Grade module 01 with one worker process; (students graded now, log lines)."""
    lines: list[str] = []
    grade(Course(REPO), subs, out=out, modules=["01"], workers=1, feedback=False,
          log=lines.append, **kw)  # type: ignore[arg-type]
    return sorted(m.group(1) for line in lines if (m := PROGRESS.match(line))), lines


def scores(out: Path) -> dict[str, tuple[str, str]]:
    return {r["student"]: (r["score"], r["status"])
            for r in csv.DictReader((out / "grades.csv").open())}


def test_the_same_command_again_grades_only_what_changed(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "grading"
    for student in ("ada_complete", "ben_blank"):
        shutil.copytree(EXAMPLES / student / "01_tensor", subs / student / "01_tensor")
    first, _ = run(subs, out)
    assert first == ["ada_complete", "ben_blank"]
    before = scores(out)
    assert before["ada_complete"][0] != "0" and before["ben_blank"] == ("0", "graded")
    again, lines = run(subs, out)
    assert again == [] and before == scores(out)
    assert any("2 of 2 submission(s) unchanged" in line for line in lines), lines
    # ben hands in again (ada's notebook): only ben is graded, and now earns ada's score
    shutil.copy(subs / "ada_complete" / "01_tensor" / "tensor.ipynb",
                subs / "ben_blank" / "01_tensor" / "tensor.ipynb")
    changed, _ = run(subs, out)
    assert changed == ["ben_blank"]
    assert scores(out)["ben_blank"] == before["ada_complete"]
    # --regrade: everything again
    everything, _ = run(subs, out, regrade=True)
    assert everything == ["ada_complete", "ben_blank"]


def test_an_interrupted_run_is_finished_by_the_same_command(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "grading"
    for student in ("ada_complete", "ben_blank"):
        shutil.copytree(EXAMPLES / student / "01_tensor", subs / student / "01_tensor")

    def stop_after_one(line: str) -> None:
        if line.startswith("grade [1/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        grade(Course(REPO), subs, out=out, modules=["01"], workers=1, feedback=False,
              log=stop_after_one)
    rows = scores(out)
    done = [s for s, (_, status) in rows.items() if status != "not graded"]
    assert len(done) == 1 and len(rows) == 2
    rest, lines = run(subs, out)
    assert rest == sorted(set(rows) - set(done))
    assert any("1 of 2 submission(s) unchanged" in line for line in lines), lines
    assert all(status == "graded" for _, status in scores(out).values())
