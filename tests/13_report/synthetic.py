"""A synthetic class for the report's tests and bench: a grading root with an nbgrader
gradebook (SQLite or PostgreSQL), ``grades.csv``, autograded notebooks and feedback pages,
made from a seeded random model of students and tests, without grading anything.

Each student has an ability ``a`` in [0, 1]; each test cell a difficulty ``d``; a student
passes a test with probability ``1 / (1 + exp(-10 (a - d)))``. A *planted* test is failed by
strong students (``a >= 0.6``) with a given probability, whatever the rest: the kind of test
whose prose does not say what it checks. Some students hand nothing in, some hand in a
corrupt file, some come late (10% per started day), some are flagged, one has an extension,
one cell is scored by hand and one gets extra credit. Rows go into the gradebook with
bulk inserts through nbgrader's own table definitions.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from coursekit import nbg
from coursekit.grading.records.results import Result, late_text, write_csv
from coursekit.text import number

COURSE_ID = "tinytorch"
FIRST_DUE = datetime(2026, 2, 6, 22, 59)  # naive UTC, as nbgrader stores due dates
MESSAGES = (
    "AssertionError: expected {x}, got {y}",
    "AssertionError: expected {x}, got {y}",
    "ValueError: shapes ({x}, {y}) and ({y},) not aligned",
    "NotImplementedError",
    "TypeError: unsupported operand type(s) for +: 'Tensor' and 'NoneType'",
)


@dataclass
class Spec:
    """What class to make."""

    students: int
    modules: list[tuple[str, list[tuple[str, float]]]]  # (name, [(grade_id, points)])
    seed: int = 1
    missing: float = 0.05  # share of (student, module) with nothing handed in
    corrupt: float = 0.01  # share handed in as a corrupt file
    late: float = 0.1  # share of submissions after the due date
    flagged: float = 0.02  # share flagged for review in grades.csv
    planted: dict[str, float] = field(default_factory=dict)  # grade_id -> P(strong fails)
    notebooks: bool = True  # write autograded notebooks for submissions that failed a test
    feedback: bool = True  # write a (tiny) feedback page per submission
    pad_bytes: int = 0  # filler text per autograded notebook (a real one is ~100 kB)
    answer_cell: bool = True  # a hand-graded answer cell in the first module


def standard_modules(count: int = 8, tests: int = 12) -> list[tuple[str, list[tuple[str, float]]]]:
    """``count`` modules named like the course's, ``tests`` test cells of 1 to 3 points each."""
    names = ["tensor", "activations", "layers", "losses", "dataloader", "autograd",
             "optimizers", "training"]
    out = []
    for k in range(count):
        name = names[k % len(names)]
        out.append((f"{k + 1:02d}_{name}",
                    [(f"{name}_test_{j:02d}", float(1 + (j % 3))) for j in range(tests)]))
    return out


def _id(counter: list[int]) -> str:
    counter[0] += 1
    return f"{counter[0]:032x}"


def make_class(root: Path, spec: Spec, db_url: str | None = None) -> str:
    """Write the class into the grading root ``root`` (gradebook at ``db_url``, default
    SQLite in ``root``); the gradebook's URL."""
    from nbgrader import api
    from sqlalchemy import create_engine, insert

    root.mkdir(parents=True, exist_ok=True)
    url = db_url or "sqlite:///" + str(root / "gradebook.db")
    from coursekit.grading.records.database import normalize

    url = normalize(url)
    nbg.create_gradebook(url)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(root)!r}\n"
        f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
        f"c.CourseDirectory.db_url = {url!r}\n", encoding="utf-8")
    rng = random.Random(spec.seed)
    counter = [0]
    students = [f"s{i:04d}" for i in range(spec.students)]
    ability = {s: rng.betavariate(2.0, 2.0) for s in students}
    rows: dict[str, list[dict]] = {k: [] for k in (
        "course", "student", "assignment", "notebook", "base_cell", "grade_cells",
        "solution_cells", "submitted_assignment", "submitted_notebook", "grade")}
    rows["course"].append({"id": COURSE_ID})
    rows["student"] += [{"id": s} for s in students]
    results: list[Result] = []
    extension_given = False
    for k, (module, tests) in enumerate(spec.modules):
        name = module.split("_", 1)[1]
        due = FIRST_DUE + timedelta(days=7 * k)
        aid, nid = _id(counter), _id(counter)
        rows["assignment"].append({"id": aid, "name": module, "duedate": due,
                                   "course_id": COURSE_ID})
        rows["notebook"].append({"id": nid, "name": name, "assignment_id": aid,
                                 "kernelspec": None})
        cells = []  # (cell id, grade_id, points, difficulty, kind)
        for gid, pts in tests:
            cid = _id(counter)
            rows["base_cell"].append({"id": cid, "name": gid, "notebook_id": nid,
                                      "type": "GradeCell"})
            rows["grade_cells"].append({"id": cid, "max_score": pts, "cell_type": "code"})
            cells.append((cid, gid, pts, rng.uniform(0.1, 0.7), "test"))
        sol = _id(counter)
        rows["base_cell"].append({"id": sol, "name": f"{name}_solution", "notebook_id": nid,
                                  "type": "SolutionCell"})
        rows["solution_cells"].append({"id": sol})
        if spec.answer_cell and k == 0:
            gid = f"{name}_explain"
            cid, sid = _id(counter), _id(counter)
            rows["base_cell"] += [
                {"id": cid, "name": gid, "notebook_id": nid, "type": "GradeCell"},
                {"id": sid, "name": gid, "notebook_id": nid, "type": "SolutionCell"}]
            rows["grade_cells"].append({"id": cid, "max_score": 2.0, "cell_type": "code"})
            rows["solution_cells"].append({"id": sid})
            cells.append((cid, gid, 2.0, 0.5, "answer"))
        max_score = sum(c[2] for c in cells)
        for n, student in enumerate(students):
            draw = rng.random()
            if draw < spec.missing:
                results.append(Result(student, module, 0, max_score, "missing",
                                      f"{name}.ipynb not found"))
                continue
            if draw < spec.missing + spec.corrupt:
                results.append(Result(student, module, 0, max_score, "corrupt",
                                      f"{name}.ipynb is not valid JSON (line 3, column 1)"))
                continue
            said, snid = _id(counter), _id(counter)
            late = rng.random() < spec.late
            stamp = due + (timedelta(days=rng.uniform(0.01, 3.0)) if late
                           else -timedelta(days=rng.expovariate(0.7)))
            extension = None
            if late and not extension_given:
                extension, extension_given = timedelta(days=4), True
            rows["submitted_assignment"].append({
                "id": said, "assignment_id": aid, "student_id": student,
                "timestamp": stamp.replace(microsecond=0), "extension": extension})
            a = ability[student]
            raw, failed, outputs = 0.0, [], {}
            for ci, (cid, gid, pts, diff, kind) in enumerate(cells):
                if kind == "answer":
                    manual = round(2.0 * a) if rng.random() < 0.9 else None
                    rows["grade"].append({"id": _id(counter), "notebook_id": snid,
                                          "cell_id": cid, "auto_score": None,
                                          "manual_score": manual, "extra_credit": None,
                                          "needs_manual_grade": manual is None})
                    raw += manual or 0.0
                    continue
                p_pass = 1 / (1 + math.exp(-10 * (a - diff)))
                if gid in spec.planted and a >= 0.6:
                    p_pass = 1 - spec.planted[gid]
                passed = rng.random() < p_pass
                auto = pts if passed else 0.0
                manual = extra = None
                if not passed and n == 3 and ci == 0:
                    manual = pts  # overridden by hand in the formgrader
                if passed and n == 5 and ci == 1:
                    extra = 0.5
                score = (manual if manual is not None else auto) + (extra or 0.0)
                raw += score
                rows["grade"].append({"id": _id(counter), "notebook_id": snid,
                                      "cell_id": cid, "auto_score": auto,
                                      "manual_score": manual, "extra_credit": extra,
                                      "needs_manual_grade": False})
                if not passed:
                    failed.append(f"{gid} (0/{number(pts)})")
                    if rng.random() < 0.1:
                        outputs[gid] = None  # failed on stderr: no error output
                    else:
                        tmpl = rng.choice(MESSAGES)
                        outputs[gid] = tmpl.format(x=rng.randint(1, 9), y=rng.randint(10, 99))
            due_for = due + (extension or timedelta(0))
            seconds = max(0.0, (stamp.replace(microsecond=0) - due_for).total_seconds())
            penalty = 0.0
            if seconds > 0:
                penalty = raw * min(100, 10 * math.ceil(seconds / 86400)) / 100
            flagged = rng.random() < spec.flagged
            rows["submitted_notebook"].append({
                "id": snid, "assignment_id": said, "notebook_id": nid,
                "flagged": n % 97 == 11, "late_submission_penalty": penalty or None})
            result = Result(student, module, max(0.0, raw - penalty), max_score, "graded",
                            "failed: " + ", ".join(failed) if failed else "all tests passed",
                            flagged="edited test cell restored; =cmd|' /C calc'!A0" if flagged
                            else "")
            result.submitted = stamp.replace(microsecond=0).isoformat() + "Z"
            result.late = late_text(seconds)
            result.penalty = number(round(penalty, 2)) if penalty else ""
            results.append(result)
            folder = root / "autograded" / student / module
            if spec.notebooks and failed:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.ipynb").write_text(json.dumps(
                    _notebook(cells, outputs, spec.pad_bytes)), encoding="utf-8")
            if spec.feedback:
                page = root / "feedback" / student / module / f"{name}.html"
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_text(f"<html><body>{student} {module}</body></html>",
                                encoding="utf-8")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table, data in rows.items():
                if data:
                    conn.execute(insert(api.Base.metadata.tables[table]), data)
    finally:
        engine.dispose()
    write_csv(results, root / "grades.csv")
    return url


def _notebook(cells: list[tuple], outputs: dict[str, str | None], pad: int) -> dict:
    nb_cells = []
    if pad:
        nb_cells.append({"cell_type": "markdown", "metadata": {}, "id": "prose",
                         "source": ("Lorem ipsum dolor sit amet. " * (pad // 28 + 1))[:pad]})
    for _, gid, pts, _, kind in cells:
        if kind != "test":
            continue
        out = []
        if gid in outputs:
            message = outputs[gid]
            if message is None:
                out.append({"output_type": "stream", "name": "stderr", "text": "warning\n"})
            else:
                ename, _, evalue = message.partition(": ")
                out.append({"output_type": "error", "ename": ename, "evalue": evalue,
                            "traceback": [f"{ename}: {evalue}"]})
                out.append({"output_type": "error", "ename": "SecondError",
                            "evalue": "not the one to use", "traceback": []})
        else:
            out.append({"output_type": "stream", "name": "stdout", "text": "ok\n"})
        nb_cells.append({"cell_type": "code", "id": gid, "execution_count": 1, "outputs": out,
                         "source": f"assert check_{gid}()",
                         "metadata": {"nbgrader": {"grade": True, "grade_id": gid,
                                                   "locked": True, "points": pts,
                                                   "solution": False}}})
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": nb_cells}
