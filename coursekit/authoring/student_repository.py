"""The ``[student_repository]`` table of ``course.toml``: where students get the course.

The student repository is the public one that ``course publish`` writes (release notebooks,
the package of the modules before the one in hand, its own ``binder/``). Three things read
where it lives: the Colab set-up cell of every notebook (``course build``), the Binder and
Colab badges, and ``course publish``::

    [student_repository]
    slug = "your-org/tinytorch"   # GitHub owner/name of the public student repository
    branch = "main"               # the branch students open
    through = "08"                # modules released so far: 01 .. through

A slug whose owner is a placeholder (``your-org``...) is fine for building, but
``course publish`` and ``course badges`` stop on it: they would publish dead links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coursekit import settings
from coursekit.course import Course, CourseError, Module

TABLE = "student_repository"
#: What a course without the table gets: builds work, publishing stops.
DEFAULT_SLUG = "your-org/tinytorch"
DEFAULT_BRANCH = "main"
#: Owners that only stand for "set me": publishing to them would make dead links.
PLACEHOLDER_OWNERS = frozenset({"your-org", "your-name", "your-username", "your-account",
                                "owner", "example", "org", "user", "username"})
KEYS = ("slug", "branch", "through")

_SLUG_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?/[A-Za-z0-9._-]{1,100}$")
# git check-ref-format, the parts a branch name of a course can trip on
_BAD_BRANCH_RE = re.compile(r"(^[-/.])|([/.]$)|(\.\.)|(//)|(@\{)|([\s~^:?*\[\\\x00-\x1f\x7f])")


@dataclass(frozen=True)
class StudentRepository:
    """Where the student repository lives and how far the course is released."""

    slug: str
    branch: str = DEFAULT_BRANCH
    #: Number (``"03"``) of the last released module; None: every module of the course.
    through: str | None = None

    @property
    def is_placeholder(self) -> bool:
        """True while the slug's owner is a stand-in such as ``your-org``."""
        return self.slug.split("/", 1)[0].lower() in PLACEHOLDER_OWNERS

    def require_real(self, what: str) -> None:
        """Raise CourseError when the slug is a placeholder (``what`` names the command)."""
        if self.is_placeholder:
            raise CourseError(
                f"{settings.SETTINGS_FILE}: [{TABLE}] slug = {self.slug!r} is a placeholder; "
                f"{what} would point students at a repository that does not exist. Set slug "
                "to the GitHub owner/name of your public student repository (an empty "
                "repository you created for it), then run `course build && course release`")

    def through_module(self, course: Course) -> Module:
        """The last released module (the course's last module when ``through`` is unset)."""
        return resolve_through(course, self.through, f"[{TABLE}] through")


def check_slug(slug: Any, where: str = f"[{TABLE}] slug") -> str:
    """``slug`` if it is a GitHub ``owner/name``; CourseError naming it otherwise."""
    if not isinstance(slug, str) or not _SLUG_RE.match(slug):
        raise CourseError(f"{settings.SETTINGS_FILE}: {where} = {slug!r}: expected a GitHub "
                          "'owner/name' such as 'my-university/tinytorch'")
    return slug


def check_branch(branch: Any, where: str = f"[{TABLE}] branch") -> str:
    """``branch`` if git accepts it as a branch name; CourseError naming it otherwise."""
    if (not isinstance(branch, str) or not branch or branch.endswith(".lock")
            or _BAD_BRANCH_RE.search(branch)):
        raise CourseError(f"{settings.SETTINGS_FILE}: {where} = {branch!r}: expected a git "
                          "branch name such as 'main'")
    return branch


def resolve_through(course: Course, value: Any, where: str = "--through") -> Module:
    """The module ``value`` names (``"03"``, ``3``, ``"03_layers"`` or ``"layers"``).

    None means the course's last module.
    """
    modules = course.modules()
    if not modules:
        raise CourseError(f"{course.root}/modules: no module files found")
    if value is None:
        return modules[-1]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CourseError(f"{where}: {value!r} is not a module number such as \"03\"")
    key = str(value).strip()
    number = f"{int(key):02d}" if key.isdigit() else None
    for module in modules:
        if key in (module.folder, module.name) or module.number == number:
            return module
    known = ", ".join(m.number for m in modules)
    raise CourseError(f"{where}: {value!r} is not a module of this course (modules: {known})")


def read(course: Course) -> StudentRepository:
    """The ``[student_repository]`` table of the course, checked (defaults when it is absent)."""
    table = settings.table(course, TABLE)
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise CourseError(f"{settings.SETTINGS_FILE}: [{TABLE}] has unknown key(s) "
                          f"{', '.join(unknown)} (known: {', '.join(KEYS)})")
    slug = check_slug(table.get("slug", DEFAULT_SLUG))
    branch = check_branch(table.get("branch", DEFAULT_BRANCH))
    through = table.get("through")
    if through is not None:
        through = resolve_through(course, through, f"{settings.SETTINGS_FILE}: "
                                  f"[{TABLE}] through").number
    return StudentRepository(slug=slug, branch=branch, through=through)
