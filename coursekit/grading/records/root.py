"""The grading root: an nbgrader course folder (outside the course's tracked folders) that
holds the gradebook, the submissions and their autograded notebooks and feedback.

A grading root keeps one gradebook for the term. The first ``course grade`` in it records
the gradebook's URL, without a password, in the root's ``nbgrader_config.py`` (where
nbgrader's own tools and the formgrader read it too); later commands use that gradebook
and refuse another (:func:`choose_gradebook`) unless told to switch.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from coursekit import nbg
from coursekit.nbg import (  # noqa: F401 - the grading root's record of its gradebook
    DEFAULT_GRADEBOOK,
    ROOT_CONFIG,
    default_gradebook,
    recorded_gradebook,
)
from coursekit.course import Course, CourseError, Module
from coursekit.grading.records.results import Job

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class GradingRoot:
    """An nbgrader course root used for grading (outside the course's tracked folders)."""

    course: Course
    root: Path
    db_url: str
    overrides: dict[str, dict[str, object]] = field(default_factory=dict)
    sandbox: bool = True  # kernels sealed off (coursekit.grading.execution.sandbox)

    @property
    def config(self):  # noqa: ANN201 - traitlets Config
        cfg = nbg.load_config(self.course, root=self.root, db_url=self.db_url)
        for section, values in self.overrides.items():
            for key, value in values.items():
                cfg[section][key] = value
        return cfg

    @property
    def course_id(self) -> str:
        """The course's id in the gradebook (``CourseDirectory.course_id``)."""
        return str(self.config.CourseDirectory.get("course_id", "") or "")

    def report(self, job: Job) -> Path:
        """Where the limits write what they did while grading ``job``."""
        return self.root / "reports" / job.student / job.module.folder / "report.json"

    def submitted(self, job: Job) -> Path:
        return self.root / "submitted" / job.student / job.module.folder / job.module.notebook_name

    def autograded(self, job: Job) -> Path:
        return self.root / "autograded" / job.student / job.module.folder / job.module.notebook_name

    def feedback(self, job: Job) -> Path:
        name = Path(job.module.notebook_name).with_suffix(".html").name
        return self.root / "feedback" / job.student / job.module.folder / name


def kernel_env(course: Course) -> dict[str, str]:
    """The environment of the grading processes and kernels that grade ``course``: this
    process's, with this Python's tools on PATH, the course on PYTHONPATH and one BLAS
    thread (grading runs several at once). Nothing of this process changes."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "").split(os.pathsep)
    if bindir not in path:
        env["PATH"] = os.pathsep.join([bindir, *filter(None, path)])
    for var in BLAS_THREADS:
        env.setdefault(var, "1")
    parts = env.get("PYTHONPATH", "").split(os.pathsep)
    if str(course.root) not in parts:
        env["PYTHONPATH"] = os.pathsep.join([str(course.root), *filter(None, parts)])
    return env


@contextmanager
def kernel_environment(course: Course) -> Iterator[None]:
    """Let kernels started by nbgrader find this Python's tools and the course's package.

    The environment is put back on exit, so grading one course (a test's fixture, say)
    does not change which ``tinytorch`` later kernels of the same process import.
    """
    saved = os.environ.copy()
    os.environ.update(kernel_env(course))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def choose_gradebook(root: Path, db_url: str | None, *, switch: bool = False,
                     log: Callable[[str], None] = print,
                     switch_option: str = "--switch-gradebook", who: str = "grade") -> str:
    """The gradebook URL a command in the grading root ``root`` uses.

    ``db_url`` (checked by :func:`coursekit.grading.records.database.check`) or, if None,
    the gradebook the root keeps (a new root: its SQLite file). A ``db_url`` naming another
    database than the one the root keeps is refused, both named, unless ``switch``. A URL
    that names the kept database with a password is used for this command only.
    ``switch_option`` is the option that switches (empty: the command cannot switch);
    ``who`` the command named in log lines.
    """
    from coursekit.grading.records import database

    root = root.resolve()
    recorded = recorded_gradebook(root)
    if db_url is None:
        if recorded is None:
            return default_gradebook(root)
        url = database.check(recorded, option=f"{root / ROOT_CONFIG}: gradebook")
        if database.has_password(recorded):
            log(f"{who}: {root / ROOT_CONFIG} held the gradebook's password; it is taken out "
                f"(from now on: {database.PASSWORD_HINT})")
        return url
    if database.has_password(db_url):
        log(f"{who}: the password in --db-url serves this command only and is written "
            "nowhere; nbgrader's tools, the formgrader and later commands need it in "
            "PGPASSWORD or ~/.pgpass")
    if recorded is None or database.same_database(db_url, recorded):
        return db_url
    old, new = database.masked(recorded), database.masked(db_url)
    if not switch:
        hint = (f"add {switch_option} to make {new} its gradebook from now on (what {old} "
                "holds stays there)" if switch_option else
                f"`course grade --switch-gradebook --db-url {new}` makes it switch")
        raise CourseError(
            f"--db-url {new}: the grading root {root} keeps the gradebook {old} (recorded by "
            "its first `course grade`); another would split the term's grades between two "
            f"gradebooks. Leave out --db-url to use {old}, or {hint}")
    log(f"{who}: the grading root {root} switches its gradebook from {old} to {new} "
        f"({switch_option}); what {old} holds (grades, manual grades, extensions) stays "
        "there")
    return db_url


def open_root(course: Course, root: Path, db_url: str | None = None,
              overrides: dict[str, dict[str, object]] | None = None,
              sandbox: bool = True) -> GradingRoot:
    """Make ``root`` an nbgrader course folder with the course's config (no notebooks yet).

    Its ``nbgrader_config.py`` records the gradebook ``db_url`` (default: its SQLite file)
    without a password; :func:`choose_gradebook` decides which one that may be.
    """
    from coursekit.grading.records.database import without_password

    root = root.resolve()
    inside = root.relative_to(course.root).parts if root.is_relative_to(course.root) else ()
    if inside and inside[0] in {"modules", "source_notebooks", "release", "tinytorch",
                                "coursekit", "tests", "examples", "docs"}:
        raise CourseError(f"--out {root}: the grading root must not be inside a tracked folder "
                          f"({inside[0]}/); use e.g. grading/")
    root.mkdir(parents=True, exist_ok=True)
    groot = GradingRoot(course, root, db_url or default_gradebook(root),
                        dict(overrides or {}), sandbox)
    (root / "nbgrader_config.py").write_text(
        "# Generated by `course grade`: the course's nbgrader config, rooted here.\n"
        f"load_subconfig({str(course.config_file)!r})  # noqa: F821\n"
        f"c = get_config()  # noqa: F821\nc.CourseDirectory.root = {str(root)!r}\n"
        "# the gradebook this grading root keeps (a password comes from PGPASSWORD or\n"
        "# ~/.pgpass, never from here)\n"
        f"c.CourseDirectory.db_url = {without_password(groot.db_url)!r}\n"
        f"c.Exchange.root = {str(root / 'exchange')!r}  # `nbgrader list` needs one\n",
        encoding="utf-8",
    )
    (root / "exchange").mkdir(exist_ok=True)
    return groot


def fill_root(groot: GradingRoot, modules: list[Module],
              log: Callable[[str], None] = print) -> GradingRoot:
    """Copy the modules' source notebooks into the grading root; register them in the gradebook."""
    course, root = groot.course, groot.root
    with kernel_environment(course):
        cfg = groot.config
        nbg.create_gradebook(groot.db_url)
        for module in modules:
            src = module.source_notebook
            if not src.is_file():
                raise CourseError(
                    f"source_notebooks/{module.folder}/{module.notebook_name}: missing; "
                    f"run `course build --module {module.number}` first")
            dest = root / "source_notebooks" / module.folder / module.notebook_name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            result = nbg.run("generate_assignment", cfg, module.folder)
            if not result.get("success"):
                raise CourseError(
                    f"grading root {root}: generate_assignment {module.folder} failed (if this "
                    "root graded an older version of the module, grade into a new --out or "
                    "remove the root):\n" + nbg.failure_text(result))
        from coursekit.grading.records.database import masked

        log(f"grade: grading root {root} (gradebook {masked(groot.db_url)})")
        return groot


def prepare_root(course: Course, root: Path, modules: list[Module], db_url: str | None = None,
                 log: Callable[[str], None] = print,
                 overrides: dict[str, dict[str, object]] | None = None) -> GradingRoot:
    """Set up ``root`` as an nbgrader course: source notebooks, gradebook, release."""
    return fill_root(open_root(course, root, db_url, overrides), modules, log)
