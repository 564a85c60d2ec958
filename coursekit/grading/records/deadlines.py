"""Due dates and late work in grading, from the course settings (``course.toml``, read by
:mod:`coursekit.schedule`, whose docstring shows the two tables).

``course grade`` writes each module's due date into the gradebook (nbgrader's
``Assignment.duedate``); nbgrader's autograde takes the submission time from the
``timestamp.txt`` next to the notebook (as ``nbgrader collect`` and ``course collect`` write
it) and its ``AssignLatePenalties`` preprocessor asks :class:`LatePolicy` (nbgrader's
``LateSubmissionPlugin`` hook, set in ``grader_config.py``) for the penalty, which nbgrader
keeps per notebook and takes off the score (``grades.csv``, ``nbgrader export``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Unicode

from coursekit import nbg
from coursekit.course import Module
from coursekit.schedule import (  # noqa: F401 - what grading reads of the settings, here too
    POLICIES,
    Policy,
    due_dates,
    due_timezone,
    due_zone,
    policy,
    policy_from,
    to_utc,
)

def set_due_dates(db_url: str, course_id: str | None, dates: dict[str, datetime | None]) -> None:
    """Write due dates into the gradebook's assignments (None clears one)."""
    from nbgrader.api import MissingEntry

    with nbg.gradebook(db_url, course_id) as gb:
        for name, due in dates.items():
            try:
                assignment = gb.find_assignment(name)
            except MissingEntry:
                continue
            if assignment.duedate != due:
                assignment.duedate = due
        gb.db.commit()


def apply(groot: Any, modules: list[Module], log: Callable[[str], None] = print) -> None:
    """Set the due dates of ``modules`` in the grading root's gradebook (clearing those that
    have none) after checking the ``[late]`` policy."""
    course = groot.course
    policy(course)  # a bad [late] table stops grading before the first notebook
    dates = due_dates(course)
    chosen = {m.folder: dates.get(m.folder) for m in modules}
    set_due_dates(groot.db_url, groot.course_id, chosen)
    shown = [f"{k} {v:%Y-%m-%d %H:%M} UTC" for k, v in chosen.items() if v is not None]
    if shown:
        log(f"grade: due dates: {', '.join(shown)}")


class LatePolicy(LateSubmissionPlugin):
    """nbgrader's late-penalty hook with the course's ``[late]`` policy.

    ``grader_config.py`` sets ``c.AssignLatePenalties.plugin_class`` to this class and
    ``c.LatePolicy.settings_file`` to the course's ``course.toml``.
    """

    settings_file = Unicode(
        "", help="The course settings file whose [late] table holds the policy"
    ).tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float,
                                total_seconds_late: float) -> float | None:
        path = Path(self.settings_file)
        late: dict[str, Any] = {}
        if self.settings_file and path.is_file():
            late = tomllib.loads(path.read_text(encoding="utf-8")).get("late", {})
        penalty = policy_from(late).penalty(score, total_seconds_late)
        self.log.info("late by %.0f s: penalty %.2f of %.2f points", total_seconds_late,
                      penalty, score)
        return penalty
