"""Who a request comes from: one secret token per student (``course tokens``).

A token reads ``tt1.<id>.<secret>``: the id finds its row, the secret proves it. Only a hash
of the secret is stored (scrypt with a salt of its own per token), so the database alone
lets nobody submit as a student; the token itself is printed once, when it is issued, as
a CSV to send to the students. Revoking a token (``--revoke``, or issuing a new one with
``--reissue``) stops it at once. A token submits only as its own student and reads only
that student's results; an instructor's token (``--instructor NAME``) reads the service's
status and the class report, and submits nothing.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from coursekit.course import CourseError
from coursekit.grading.records.results import STUDENT_ID_RE
from coursekit.service.store import Store, Token

PREFIX = "tt1"
ROLES = ("student", "instructor")
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True)
class Identity:
    """Who a valid token belongs to."""

    token_id: str
    student: str
    role: str


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **SCRYPT).hex()


def now() -> datetime:
    """Now, naive UTC (as the database keeps times)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_token(student: str, role: str = "student") -> tuple[str, Token]:
    """A new token for ``student``: the text to hand out, and the row to store."""
    if role not in ROLES:
        raise CourseError(f"token role {role!r}: expected one of {', '.join(ROLES)}")
    if not STUDENT_ID_RE.match(student):
        raise CourseError(f"student {student!r}: an id is letters, digits, '.', '_' or '-'")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    row = Token(token_id, student, role, salt.hex(), _hash(secret, salt), now(), None)
    return f"{PREFIX}.{token_id}.{secret}", row


class Verifier:
    """Checks tokens against the store. A token checked once is remembered (by a hash of
    it) so that polling costs no scrypt; its row is read on every request, so a revoked
    token stops at once."""

    def __init__(self, store: Store, remember: int = 10_000) -> None:
        self.store = store
        self._known: OrderedDict[str, str] = OrderedDict()  # sha256(token) -> token id
        self._lock = threading.Lock()
        self._remember = remember

    def check(self, text: str) -> Identity | None:
        """Who ``text`` belongs to; None for a token that is malformed, unknown, revoked or
        wrong."""
        found = self.find(text)
        if found is None:
            return None
        if found.known or self.verify(found):
            return found.identity
        return None

    def find(self, text: str) -> Found | None:
        """The live token row ``text`` names (cheap: no scrypt); None for a token that is
        malformed, unknown or revoked."""
        parts = text.strip().split(".", 2)
        if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16 or not parts[2]:
            return None
        row = self.store.token(parts[1])
        if row is None or row.revoked_at is not None:
            return None
        digest = hashlib.sha256(text.strip().encode("utf-8")).hexdigest()
        with self._lock:
            known = self._known.get(digest) == row.id
        return Found(row, parts[2], digest, known)

    def verify(self, found: Found) -> bool:
        """Whether the secret of ``found`` is its token's (scrypt: the costly part); a token
        that passes is remembered."""
        try:
            good = hmac.compare_digest(_hash(found.secret, bytes.fromhex(found.row.salt)),
                                       found.row.hash)
        except (ValueError, UnicodeEncodeError):
            good = False
        if good:
            with self._lock:
                self._known[found.digest] = found.row.id
                while len(self._known) > self._remember:
                    self._known.popitem(last=False)
        return good


@dataclass(frozen=True)
class Found:
    """A token naming a live row: its secret still to be checked unless ``known`` (checked
    before)."""

    row: Token
    secret: str
    digest: str
    known: bool

    @property
    def identity(self) -> Identity:
        return Identity(self.row.id, self.row.student, self.row.role)


@dataclass(frozen=True)
class Issued:
    """A token just issued (printed once)."""

    student: str
    role: str
    token: str
    name: str = ""
    email: str = ""


def issue(store: Store, students: Iterable[tuple[str, str, str]], *, reissue: bool = False,
          role: str = "student") -> tuple[list[Issued], list[str]]:
    """A token for each ``(student, name, email)`` that has no live one (``reissue``: a new
    one for each, the old revoked); ``(issued, skipped)``."""
    live = {t.student for t in store.tokens() if t.revoked_at is None and t.role == role}
    issued, skipped = [], []
    for student, name, email in students:
        if student in live and not reissue:
            skipped.append(student)
            continue
        if reissue:
            store.revoke(student, now(), role)
        text, row = new_token(student, role)
        store.add_token(row)
        issued.append(Issued(student, role, text, name, email))
    return issued, skipped


def as_csv(issued: list[Issued]) -> str:
    """The tokens issued, as CSV (student, name, email, token)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "name", "email", "token"])
    for item in issued:
        writer.writerow([item.student, item.name, item.email, item.token])
    return out.getvalue()
