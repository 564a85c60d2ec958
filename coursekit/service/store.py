"""The service's own tables, in the gradebook's database (SQLite or PostgreSQL).

Two tables beside nbgrader's, so that one database (and one backup) holds the term:

* ``coursekit_service_tokens``: one row per token issued, its secret stored hashed
  (:mod:`coursekit.service.tokens`), and when it was revoked;
* ``coursekit_service_attempts``: every submission the service accepted, with its time,
  where its notebook is kept, its state (``queued``, ``grading``, ``done``, ``failed``), its
  result as the student sees it, and whether it is the one that counts.

A submission is accepted only once its notebook is on disk and its row is committed
(:meth:`Store.accept`), so a service killed at any moment loses no accepted work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from coursekit import nbg
from coursekit.grading.records.database import normalize

META = MetaData()
TOKENS = Table(
    "coursekit_service_tokens", META,
    Column("id", String(32), primary_key=True),
    Column("student", String(64), nullable=False, index=True),
    Column("role", String(16), nullable=False),  # student | instructor
    Column("salt", String(64), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
)
ATTEMPTS = Table(
    "coursekit_service_attempts", META,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("student", String(64), nullable=False, index=True),
    Column("module", String(64), nullable=False),
    Column("submitted_at", DateTime, nullable=False),  # naive UTC, as nbgrader keeps times
    Column("idempotency", String(64), nullable=True),
    Column("sha256", String(64), nullable=False),
    Column("code_digest", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("folder", String(500), nullable=False),  # the notebook's folder, in the grading root
    Column("client", String(80), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("started_at", DateTime, nullable=True),
    Column("graded_at", DateTime, nullable=True),
    Column("seconds", Float, nullable=True),  # from submitted to graded
    Column("score", Float, nullable=True),  # after the late penalty
    Column("max_score", Float, nullable=True),
    Column("counts", Boolean, nullable=False, default=False),
    Column("fingerprint", String(64), nullable=True),
    Column("feedback_key", String(64), nullable=False),
    Column("result", Text, nullable=True),  # JSON: what the student sees
    Column("error", Text, nullable=True),
    UniqueConstraint("student", "idempotency", name="coursekit_service_once"),
)
STATES = ("queued", "grading", "done", "failed")


@dataclass
class Attempt:
    """One row of the attempts table."""

    id: int
    student: str
    module: str
    submitted_at: datetime
    idempotency: str | None
    sha256: str
    code_digest: str
    size: int
    folder: str
    client: str
    state: str
    started_at: datetime | None
    graded_at: datetime | None
    seconds: float | None
    score: float | None
    max_score: float | None
    counts: bool
    fingerprint: str | None
    feedback_key: str
    result: str | None
    error: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.student, self.module)

    @property
    def view(self) -> dict[str, Any]:
        """The stored result as the student sees it ({} before it is graded)."""
        try:
            data = json.loads(self.result) if self.result else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}


@dataclass
class Token:
    """One row of the tokens table."""

    id: str
    student: str
    role: str
    salt: str
    hash: str
    created_at: datetime
    revoked_at: datetime | None


def engine_for(db_url: str) -> Engine:
    """An engine on the gradebook's database that threads may share."""
    url = normalize(db_url)
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
    return create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)


class Store:
    """The service's tables in the database ``db_url`` (created when missing)."""

    def __init__(self, db_url: str) -> None:
        nbg.create_gradebook(normalize(db_url))  # nbgrader's tables first, in an empty database
        self.engine = engine_for(db_url)
        META.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction (committed on leaving)."""
        with self.engine.begin() as conn:
            yield conn

    # -- tokens -----------------------------------------------------------------------------
    def add_token(self, token: Token) -> None:
        with self.begin() as conn:
            conn.execute(TOKENS.insert().values(**token.__dict__))

    def token(self, token_id: str) -> Token | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(TOKENS).where(TOKENS.c.id == token_id)).first()
        return Token(**row._asdict()) if row is not None else None

    def tokens(self, student: str | None = None) -> list[Token]:
        query = select(TOKENS).order_by(TOKENS.c.student, TOKENS.c.created_at)
        if student is not None:
            query = query.where(TOKENS.c.student == student)
        with self.engine.connect() as conn:
            return [Token(**row._asdict()) for row in conn.execute(query)]

    def revoke(self, student: str, when: datetime, role: str | None = None) -> int:
        """Revoke every live token of ``student``; how many."""
        cond = and_(TOKENS.c.student == student, TOKENS.c.revoked_at.is_(None))
        if role is not None:
            cond = and_(cond, TOKENS.c.role == role)
        with self.begin() as conn:
            return conn.execute(update(TOKENS).where(cond).values(revoked_at=when)).rowcount

    # -- attempts ---------------------------------------------------------------------------
    def accept(self, **values: Any) -> int:
        """Record an accepted submission (its notebook already on disk); its id."""
        with self.begin() as conn:
            done = conn.execute(ATTEMPTS.insert().values(state="queued", counts=False,
                                                         **values))
            return int(done.inserted_primary_key[0])

    def attempt(self, attempt_id: int) -> Attempt | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id)).first()
        return Attempt(**row._asdict()) if row is not None else None

    def attempts(self, student: str, module: str | None = None) -> list[Attempt]:
        """A student's attempts (of one module), oldest first."""
        query = select(ATTEMPTS).where(ATTEMPTS.c.student == student).order_by(ATTEMPTS.c.id)
        if module is not None:
            query = query.where(ATTEMPTS.c.module == module)
        with self.engine.connect() as conn:
            return [Attempt(**row._asdict()) for row in conn.execute(query)]

    def by_idempotency(self, student: str, key: str) -> Attempt | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(ATTEMPTS).where(and_(
                ATTEMPTS.c.student == student, ATTEMPTS.c.idempotency == key))).first()
        return Attempt(**row._asdict()) if row is not None else None

    def count_since(self, student: str, module: str, since: datetime) -> list[datetime]:
        """When ``student`` submitted ``module`` since ``since``, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ATTEMPTS.c.submitted_at).where(and_(
                ATTEMPTS.c.student == student, ATTEMPTS.c.module == module,
                ATTEMPTS.c.submitted_at >= since)).order_by(ATTEMPTS.c.submitted_at))
            return [r[0] for r in rows]

    def pending(self) -> list[Attempt]:
        """Accepted attempts not graded (queued, grading when the service stopped, or
        failed), oldest first."""
        query = (select(ATTEMPTS).where(ATTEMPTS.c.state.in_(("queued", "grading", "failed")))
                 .order_by(ATTEMPTS.c.id))
        with self.engine.connect() as conn:
            return [Attempt(**row._asdict()) for row in conn.execute(query)]

    def waiting(self) -> int:
        """How many attempts wait or are being graded."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ATTEMPTS).where(
                ATTEMPTS.c.state.in_(("queued", "grading")))).scalar_one())

    def counted_keys(self) -> list[tuple[str, str]]:
        """Every (student, module) with a graded attempt."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ATTEMPTS.c.student, ATTEMPTS.c.module).where(
                ATTEMPTS.c.state == "done").distinct())
            return [(r[0], r[1]) for r in rows]

    def set_state(self, attempt_id: int, state: str, **values: Any) -> None:
        assert state in STATES
        with self.begin() as conn:
            conn.execute(update(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id)
                         .values(state=state, **values))

    def set_counting(self, student: str, module: str, attempt_id: int | None) -> None:
        """Mark ``attempt_id`` as the attempt of ``student``'s ``module`` that counts."""
        with self.begin() as conn:
            conn.execute(update(ATTEMPTS).where(and_(
                ATTEMPTS.c.student == student, ATTEMPTS.c.module == module))
                .values(counts=ATTEMPTS.c.id == attempt_id if attempt_id is not None
                        else False))
