"""Thin layer over nbgrader's Python API, always configured from ``grader_config.py``."""

from __future__ import annotations

import ast
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from traitlets.config import Config, PyFileConfigLoader

from coursekit.course import CONFIG_FILE, Course, CourseError

ROOT_CONFIG = "nbgrader_config.py"  # in a grading root: the gradebook it keeps
DEFAULT_GRADEBOOK = "gradebook.db"  # the SQLite file of a root graded without --db-url


def ensure_tools_on_path() -> None:
    """Put this Python's ``bin`` folder on PATH: nbgrader runs ``alembic`` and kernels from it."""
    bindir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *filter(None, parts)])


def load_config(course: Course, root: Path | None = None, db_url: str | None = None) -> Config:
    """The course's nbgrader config, optionally pointed at another course root / gradebook.

    ``root`` is the nbgrader course root (where source_notebooks/, release/, submitted/,
    autograded/ and feedback/ live); the default is the course root itself.
    """
    path = course.config_file
    if not path.is_file():
        raise CourseError(f"{path}: the course's nbgrader config {CONFIG_FILE} is missing")
    try:
        cfg = PyFileConfigLoader(CONFIG_FILE, path=str(course.root)).load_config()
    except Exception as exc:
        raise CourseError(f"{path}: cannot load the nbgrader config: {exc}") from exc
    if root is not None:
        cfg.CourseDirectory.root = str(Path(root).resolve())
        cfg.CourseDirectory.db_url = "sqlite:///" + str(Path(root).resolve() / "gradebook.db")
    if db_url:
        cfg.CourseDirectory.db_url = db_url
    return cfg


def default_gradebook(root: Path) -> str:
    """The SQLite gradebook of a grading root graded without ``--db-url``."""
    return "sqlite:///" + str(root.resolve() / DEFAULT_GRADEBOOK)


def recorded_gradebook(root: Path) -> str | None:
    """The gradebook URL the grading root ``root`` keeps (as its first ``course grade``
    recorded it in ``nbgrader_config.py``), or None for a root not graded yet."""
    config = root / ROOT_CONFIG
    if not config.is_file():
        # a root graded before the URL was recorded: its SQLite file is its gradebook
        old = root / DEFAULT_GRADEBOOK
        return default_gradebook(root) if old.is_file() else None
    try:
        tree = ast.parse(config.read_text(encoding="utf-8"), filename=str(config))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise CourseError(f"{config}: cannot read it ({exc}); it records this grading "
                          "root's gradebook (c.CourseDirectory.db_url)") from None
    found = None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and ast.unparse(node.targets[0]) == "c.CourseDirectory.db_url"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            found = node.value.value
    if found is None:
        raise CourseError(f"{config}: names no gradebook (expected a line "
                          "c.CourseDirectory.db_url = '...', as `course grade` writes it)")
    return found


def alembic_head() -> str:
    """The newest revision of nbgrader's gradebook schema, read from its migration scripts."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    head = ScriptDirectory(ALEMBIC_DIR).get_current_head()
    if not head:
        raise CourseError(f"{ALEMBIC_DIR}: nbgrader's migration scripts name no head revision")
    return head


def create_gradebook(db_url: str) -> bool:
    """Create nbgrader's tables and schema stamp in an empty database; True if it was empty.

    nbgrader's ``Gradebook`` does the same on first use, but learns the schema revision by
    running ``alembic heads`` in a subprocess (about 2 s); this reads it in-process. A
    database that already has tables is left as it is (nbgrader checks it on open).
    """
    from nbgrader.api import Base
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(db_url, future=True)
    try:
        if inspect(engine).get_table_names():
            return False
        head = alembic_head()
        Base.metadata.create_all(bind=engine)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alembic_version "
                              "(version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                         {"v": head})
        return True
    finally:
        engine.dispose()


@contextmanager
def gradebook(db_url: str, course_id: str | None = None) -> Iterator[Any]:
    """nbgrader's ``Gradebook`` on ``db_url``, closed on exit, without the SQLAlchemy warnings
    about how nbgrader uses its session (not the course's concern).

    ``course_id`` is the course's row in the gradebook (``CourseDirectory.course_id``);
    without it nbgrader adds a row for its ``default_course``.
    """
    from nbgrader.api import Gradebook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (Gradebook(db_url, course_id) if course_id else Gradebook(db_url)) as gb:
            yield gb


def _quiet(app: Any) -> None:
    """Keep nbgrader's own log lines off the console; ``capture_log`` still records them."""
    app.log.propagate = False
    for handler in list(app.log.handlers):
        if isinstance(handler, logging.StreamHandler) and not hasattr(handler.stream, "getvalue"):
            app.log.removeHandler(handler)
    app.log.setLevel(logging.INFO)


def run(kind: str, cfg: Config, assignment_id: str, student_id: str | None = None,
        *, force: bool = True, create: bool = True) -> dict[str, Any]:
    """Run one nbgrader converter (``generate_assignment``, ``autograde``, ``generate_feedback``).

    Returns nbgrader's result dict: ``success``, ``log`` and, on failure, ``error``.
    """
    from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    ensure_tools_on_path()
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = assignment_id
    if student_id is not None:
        coursedir.student_id = student_id
    if kind == "generate_assignment":
        app = GenerateAssignment(coursedir=coursedir, config=cfg)
        app.create_assignment = create
    elif kind == "autograde":
        app = Autograde(coursedir=coursedir, config=cfg)
        app.create_student = create
    elif kind == "generate_feedback":
        app = GenerateFeedback(coursedir=coursedir, config=cfg)
    else:
        raise ValueError(f"run(kind={kind!r}): expected generate_assignment, autograde or "
                         "generate_feedback")
    app.force = force
    _quiet(app)
    with warnings.catch_warnings():
        # SQLAlchemy warns about how nbgrader's gradebook uses its session; not our concern
        warnings.filterwarnings("ignore", module=r"nbgrader\..*")
        warnings.filterwarnings("ignore", message=r".*not in session.*")
        return capture_log(app)


def exception_lines(text: str) -> list[str]:
    """The exception line (``SomeError: message``) of each Python traceback in ``text``, the
    first line of its message only: no frame and no source line (which could be a hidden
    test's), nothing of a message's further lines. A traceback in nbgrader's log is
    indented as a whole (its frames deeper than its exception line), as in Python's own."""
    found: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("Traceback (most recent call last):"):
            continue
        frame_indent = None
        for after in lines[i + 1:]:
            if not after.strip():
                continue
            if after.startswith("["):
                break  # the next log record: no exception line
            indent = len(after) - len(after.lstrip())
            if after.lstrip().startswith('File "'):
                frame_indent = indent if frame_indent is None else min(frame_indent, indent)
                continue
            if frame_indent is None or indent > frame_indent:
                continue  # a source line or a caret line of a frame
            found.append(after.strip()[:200])
            break
    return found


def failure_text(result: dict[str, Any], limit: int = 12) -> str:
    """The interesting lines of a failed nbgrader run: the exception that stopped it (from
    a traceback nbgrader logged, as "see the above traceback" refers to), then the errors
    of the log and the last line of the traceback it raised."""
    log = result.get("log") or ""
    raised = exception_lines(log)[:1]
    lines = [line for line in log.splitlines()
             if line.startswith(("[ERROR]", "[CRITICAL]", "[WARNING]"))
             and not line.rstrip().endswith("Traceback (most recent call last):")]
    err = (result.get("error") or "").strip().splitlines()
    if err:
        lines.append(err[-1])
    keep = max(limit - len(raised), 0)
    return "\n".join(raised + (lines[-keep:] if keep else [])) or "no log output"
