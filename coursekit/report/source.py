"""Where the report's data is: the grading root, its gradebook URL and the course's id, and
a read-only connection to the gradebook (one clear message when any of it is missing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from coursekit.course import Course, CourseError
from coursekit.grading.records.database import CONNECT_TIMEOUT, masked, normalize, sqlite_file

ROOT_CONFIG = "nbgrader_config.py"


@dataclass(frozen=True)
class Source:
    """What one report reads: a grading root (None: the gradebook alone), the gradebook's
    URL and the course's id in it (empty: every assignment the gradebook holds)."""

    root: Path | None
    db_url: str
    course_id: str
    origin: str = "--db-url"  # where the URL came from, for messages

    @property
    def shown_url(self) -> str:
        """The gradebook URL as it may be shown (no password)."""
        return masked(self.db_url)


def _root_config(root: Path) -> Any:
    from traitlets.config import PyFileConfigLoader

    try:
        return PyFileConfigLoader(ROOT_CONFIG, path=str(root)).load_config()
    except Exception as exc:
        raise CourseError(f"{root / ROOT_CONFIG}: cannot read it ({exc})") from None


def _course_id(course: Course) -> str:
    from coursekit import nbg

    cfg = nbg.load_config(course)
    return str(cfg.CourseDirectory.get("course_id", "") or "")


def locate(course: Course, grading: Path | None = None, db_url: str | None = None) -> Source:
    """The grading root ``grading`` (default ``grading/`` in the course root) and the gradebook
    it was graded into, unless ``db_url`` names another; a :class:`CourseError` naming the
    option when the folder is no grading root."""
    option = "--grading"
    root = (grading or course.root / "grading").resolve()
    if not root.is_dir():
        if db_url and grading is None:
            return Source(None, normalize(db_url.strip()), _course_id(course))
        raise CourseError(f"{option} {root}: no such folder; expected the grading root "
                          "`course grade` wrote (default: grading/ in the course root)")
    config = root / ROOT_CONFIG
    demo = root / "demo"
    if not config.is_file() and grading is None and (demo / ROOT_CONFIG).is_file():
        # nothing graded for a term yet, but `course demo` graded the example class
        root, config = demo, demo / ROOT_CONFIG
    if not config.is_file():
        raise CourseError(f"{option} {root}: not a grading root (no {ROOT_CONFIG}); run "
                          "`course grade` first")
    cfg = _root_config(root)
    course_id = str(cfg.CourseDirectory.get("course_id", "") or "")
    if db_url:
        return Source(root, normalize(db_url.strip()), course_id)
    url = str(cfg.CourseDirectory.get("db_url", "") or "")
    if not url:
        raise CourseError(f"{config}: names no gradebook (c.CourseDirectory.db_url); "
                          "pass --db-url")
    return Source(root, normalize(url), course_id, f"{config}: db_url")


def engine(source: Source) -> Any:
    """A SQLAlchemy engine that can only read the gradebook, checked by a first query; a
    :class:`CourseError` (one line, no password) when the gradebook is missing, empty or
    cannot be reached."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown, option = source.shown_url, source.origin
    try:
        parsed = make_url(source.db_url)
        parsed.get_dialect().import_dbapi()
    except (ArgumentError, ValueError):
        raise CourseError(f"{option} {shown}: not a database URL; expected e.g. "
                          "sqlite:////absolute/path/gradebook.db or "
                          "postgresql://user:password@host:5432/dbname") from None
    except NoSuchModuleError:
        raise CourseError(f"{option} {shown}: unknown database kind "
                          f"{parsed.drivername!r}") from None
    except ImportError as exc:
        raise CourseError(f"{option} {shown}: the database driver "
                          f"{parsed.get_driver_name()!r} is not installed "
                          f"({exc.name or exc})") from None
    args: dict[str, Any] = {}
    url: Any = source.db_url
    path = sqlite_file(source.db_url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and path is not None:
        if not path.is_file():
            raise CourseError(f"gradebook {path}: no such file; grade into it with "
                              "`course grade` first")
        if path.stat().st_size == 0:
            raise CourseError(f"gradebook {path}: the file is empty; grade into it with "
                              "`course grade` first")
        # opened read-only: the report never writes the gradebook (nor creates one)
        url = f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true"
    elif backend == "postgresql":
        args = {"connect_timeout": CONNECT_TIMEOUT,
                "options": "-c default_transaction_read_only=on"}
    eng = create_engine(url, connect_args=args)
    try:
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        eng.dispose()
        orig = getattr(exc, "orig", None) or exc
        first = next((line.strip() for line in str(orig).splitlines() if line.strip()),
                     type(orig).__name__)
        raise CourseError(f"{option} {shown}: cannot open the database: {first}") from None
    return eng
