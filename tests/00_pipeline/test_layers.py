"""The instructor tool's packages import one way only.

Layers, lowest first: the base modules (``course``, ``cells``, ``nbg``, ``leaks``,
``settings``, ``schedule``, ``released``, ``text``, ``handin``); ``authoring`` (lint, build,
release) and ``grading`` (dispatch, execution, records), which do not import each other; within
grading, ``grading.records`` (the grading root, gradebook, results, deadlines) builds on the
base alone; ``lms`` (collect, roster, export, feedback archives), which builds on
``grading``; ``publishing`` (student repository, badges, lab), which builds on
``authoring``; ``report`` (the class report), which reads and never grades: the base and
``grading.records`` only; ``service`` (the grading service), which calls the grading
session and serves the class report (the base, ``grading``, ``lms``, ``report``) and which
only the commands import; the commands on top (``cli``, ``check``, ``demo``). The kernel
side (``grading/execution/kernel``) runs inside the grading sandbox and imports nothing of
``coursekit`` but itself; being a leaf, ``authoring`` may read it too (the lint refuses what
the seal would not put back, by the seal's own rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "coursekit"
BASE = {"course", "cells", "nbg", "leaks", "settings", "schedule", "released", "text",
        "handin"}
# package -> what it may import (besides itself)
ALLOWED = {
    "base": {"base"},
    "authoring": {"base", "grading.kernel"},
    "grading": {"base", "grading.kernel", "grading.records"},
    "grading.kernel": set(),
    "grading.records": {"base"},
    "lms": {"base", "grading", "grading.records"},
    "publishing": {"base", "authoring"},
    "report": {"base", "grading.records"},
    "service": {"base", "grading", "grading.records", "lms", "report"},
    "top": {"base", "authoring", "grading", "grading.kernel", "grading.records", "lms",
            "publishing", "report", "service", "top"},
}


def _layer(parts: tuple[str, ...]) -> str:
    """The layer of coursekit module ``parts`` (without the leading ``coursekit``)."""
    if not parts:
        return "top"
    if parts[:3] == ("grading", "execution", "kernel"):
        return "grading.kernel"
    if parts[:2] == ("grading", "records"):
        return "grading.records"
    if parts[0] in {"authoring", "grading", "lms", "publishing", "report", "service"}:
        return parts[0]
    if parts[0] in BASE:
        return "base"
    return "top"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "coursekit":
                found += [(node.lineno, f"coursekit.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "coursekit"]


def test_imports_run_one_way() -> None:
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("").parts
        rel = rel[:-1] if rel[-1] == "__init__" else rel
        mine = _layer(rel)
        for line, name in _imports(path):
            theirs = _layer(tuple(name.split(".")[1:]))
            if theirs != mine and theirs not in ALLOWED[mine]:
                wrong.append(f"coursekit/{path.relative_to(ROOT)}:{line}: {mine} imports "
                             f"{name} ({theirs})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from coursekit.grading.dispatch.pool import Pool\nimport coursekit.course\n")
    assert [n for _, n in _imports(bad)] == ["coursekit.grading.dispatch.pool", "coursekit.course"]
    assert _layer(("grading", "dispatch", "pool")) == "grading"
    assert _layer(("grading", "execution", "kernel", "guard")) == "grading.kernel"
    assert "grading" not in ALLOWED["authoring"]
    assert _layer(("grading", "records", "database")) == "grading.records"
    assert _layer(("report", "page")) == "report"
    assert "grading" not in ALLOWED["report"]
    assert _layer(("service", "app")) == "service"
    assert all("service" not in ALLOWED[layer] for layer in ALLOWED if layer != "top")
