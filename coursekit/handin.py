"""How students hand in their notebooks: the ``[service]`` table of ``course.toml``.

The grading service (``course serve``) takes a notebook from the Submit cell at the end of
every release notebook, grades it and answers with the score and the failed tests. Its
settings::

    [service]
    url = "https://grading.example.edu/tinytorch"  # where Submit cells send notebooks
    submissions_per_hour = 10     # per student and module (fast feedback, not probing)
    counts = "last"               # "last": the last submission before the due date (the
                                  # last one of all when none was on time); "best": the
                                  # highest score after the late penalty
    closes = "late_window"        # refuse submissions once the late window of [late] ends
                                  # ("due": at the due date, "never": always take them)
    max_notebook_mb = 5           # a bigger notebook is refused (413)
    queue = 200                   # submissions waiting at most; more are told to retry (503)
    wrong_tokens = 30             # wrong tokens from one address (or wrong secrets for
                                  # one token) in 10 minutes, then 429; valid ones pass
    hand_in = "..."               # what the Submit cell says when there is no url

``course publish`` carries ``url`` (and ``hand_in``) into the student repository. Without
a ``url`` the Submit cell says how the course collects work instead (``hand_in``, or the
default: download the notebook and hand it in through the learning platform).
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from coursekit.course import Course, CourseError
from coursekit.settings import SETTINGS_FILE, table

TABLE = "service"
COUNTS = ("last", "best")
CLOSES = ("late_window", "due", "never")
DEFAULT_HAND_IN = ("This course collects notebooks through its learning platform: download "
                   "this notebook (File > Download) and hand it in there, under its own "
                   "name.")
_URL_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~\-/%]*)?$")


@dataclass(frozen=True)
class ServiceSettings:
    """The checked ``[service]`` table (defaults where a key is absent)."""

    url: str | None = None
    submissions_per_hour: int = 10
    counts: str = "last"
    closes: str = "late_window"
    max_notebook_mb: float = 5.0
    queue: int = 200
    wrong_tokens: int = 30  # per client address (and per token id) and 10 minutes
    hand_in: str = DEFAULT_HAND_IN

    @property
    def max_bytes(self) -> int:
        """The size limit of a notebook, in bytes."""
        return int(self.max_notebook_mb * 1024 * 1024)


def _where(key: str) -> str:
    return f"{SETTINGS_FILE} [{TABLE}] {key}"


def check_url(value: Any, where: str = _where("url")) -> str:
    """``value`` without a trailing slash if it is an https URL (or an http one on this
    machine: localhost, 127.0.0.1, [::1]); CourseError otherwise: the Submit cells send
    every student's token to it."""
    if not isinstance(value, str) or not _URL_RE.match(value.strip()):
        raise CourseError(f"{where} = {value!r}: expected the grading service's address, "
                          "such as \"https://grading.example.edu/tinytorch\"")
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "http":
        host = parts.hostname or ""
        try:
            local = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if not local:
            raise CourseError(f"{where} = {value!r}: http:// would send every student's "
                              "token unencrypted; use https:// (behind the TLS proxy, see "
                              "the README's Deployment), http:// only for a service on this "
                              "machine (localhost, 127.0.0.1)")
    return url


def _positive(value: Any, key: str, *, whole: bool) -> float:
    kind = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) \
            or value <= 0:
        what = "a whole number" if whole else "a number"
        raise CourseError(f"{_where(key)} = {value!r}: expected {what} above 0")
    return value


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise CourseError(f"{_where(key)} = {value!r}: expected one of "
                          f"{', '.join(repr(c) for c in choices)}")
    return str(value)


def read(course: Course) -> ServiceSettings:
    """The course's ``[service]`` settings, checked (defaults when the table is absent)."""
    values = table(course, TABLE)
    known = set(ServiceSettings.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise CourseError(f"{SETTINGS_FILE} [{TABLE}] has unknown key(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")
    default = ServiceSettings()
    url = values.get("url")
    hand_in = values.get("hand_in", default.hand_in)
    if not isinstance(hand_in, str) or not hand_in.strip():
        raise CourseError(f"{_where('hand_in')} = {hand_in!r}: expected a sentence that says "
                          "how students hand in their notebooks")
    return ServiceSettings(
        url=check_url(url) if url is not None else None,
        submissions_per_hour=int(_positive(values.get("submissions_per_hour",
                                                      default.submissions_per_hour),
                                           "submissions_per_hour", whole=True)),
        counts=_choice(values.get("counts", default.counts), "counts", COUNTS),
        closes=_choice(values.get("closes", default.closes), "closes", CLOSES),
        max_notebook_mb=float(_positive(values.get("max_notebook_mb", default.max_notebook_mb),
                                        "max_notebook_mb", whole=False)),
        queue=int(_positive(values.get("queue", default.queue), "queue", whole=True)),
        wrong_tokens=int(_positive(values.get("wrong_tokens", default.wrong_tokens),
                                   "wrong_tokens", whole=True)),
        hand_in=" ".join(hand_in.split()),
    )
