"""What changed in ``course.toml`` since a grading root last graded each module.

A grade depends on the module's due date and, for a late submission only, on the late
policy (:func:`coursekit.grading.grade.fingerprints`). The grading root keeps the settings
each module was last graded under (``course-settings.json``), so that ``course grade`` can
say why it grades submissions again: a due date moved (every submission of that module),
or the late policy changed (the late submissions only; on-time ones are kept).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coursekit.course import Course, Module
from coursekit.grading.records import deadlines
from coursekit.grading.records.results import utc_text
from coursekit.settings import table

RECORD = "course-settings.json"


def current(course: Course, modules: list[Module]) -> dict[str, dict[str, Any]]:
    """Module folder -> the due date and late policy it is graded under now."""
    dates = deadlines.due_dates(course)
    late = table(course, "late")
    return {m.folder: {"due": utc_text(dates.get(m.folder)) or None, "late": late}
            for m in modules}


def read(root: Path) -> dict[str, dict[str, Any]]:
    """The settings each module was last graded under in the grading root ``root``."""
    try:
        data = json.loads((root / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write(root: Path, graded: dict[str, dict[str, Any]]) -> None:
    """Record that the modules of ``graded`` were graded under those settings."""
    data = read(root)
    data.update(graded)
    tmp = root / (RECORD + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, root / RECORD)


def _policy(late: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in sorted(late.items())) or "none"


def explain(before: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]],
            late_again: dict[str, int], log: Callable[[str], None] = print) -> None:
    """Say which settings changed since each module was last graded and what is graded
    again for it (``late_again``: module -> late submissions graded again)."""
    late_changed: list[str] = []
    for folder, settings in now.items():
        old = before.get(folder)
        if old is None:
            continue
        if old.get("due") != settings["due"]:
            log(f"grade: course.toml [due] {folder} changed since this grading root last graded "
                f"it ({old.get('due') or 'none'} -> {settings['due'] or 'none'}): its "
                "submissions are graded again")
        elif old.get("late") != settings["late"]:
            late_changed.append(folder)
    if late_changed:
        old_late = before[late_changed[0]].get("late") or {}
        counts = ", ".join(f"{folder} {late_again.get(folder, 0)}" for folder in late_changed)
        log(f"grade: course.toml [late] changed since this grading root last graded "
            f"{', '.join(late_changed)} ({_policy(old_late)} -> "
            f"{_policy(now[late_changed[0]]['late'])}): it concerns late submissions only, "
            f"which are graded again ({counts}); on-time ones are kept")
