"""The gradebook's database URL: checked once, before grading starts, with one clear message.

Any SQLAlchemy URL works: ``sqlite:////abs/path/gradebook.db`` (the default, one file in the
grading root) or a database server, ``postgresql://user:password@host:5432/dbname``. The
course's PostgreSQL driver is psycopg 3 (an optional install:
``.venv/bin/pip install -r requirements-postgresql.txt``), so a ``postgresql://`` or
``postgres://`` URL without a driver is read as ``postgresql+psycopg://`` (SQLAlchemy's
own default would be the older psycopg2). Messages never show the password.

Nothing the course writes holds a password: a grading root records its gradebook's URL
without it (:func:`without_password`), and a database server's password comes from where
PostgreSQL's own client library looks for it, the ``PGPASSWORD`` environment variable or
the password file (``~/.pgpass``, or the file ``PGPASSFILE`` names), for ``course`` and
nbgrader's tools alike. A password given in ``--db-url`` serves that one command.
"""

from __future__ import annotations

import os
from pathlib import Path

from coursekit.course import CourseError

POSTGRES_INSTALL = ".venv/bin/pip install -r requirements-postgresql.txt"
EXAMPLES = ("sqlite:////absolute/path/gradebook.db or "
            "postgresql://user:password@host:5432/dbname")
CONNECT_TIMEOUT = 10  # seconds to wait for a database server
PASSWORD_HINT = ("give the password in the PGPASSWORD environment variable or in "
                 "PostgreSQL's password file ~/.pgpass (host:port:database:user:password, "
                 "mode 0600)")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def normalize(url: str) -> str:
    """``url`` with the course's PostgreSQL driver filled in where none is named."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def masked(url: str) -> str:
    """``url`` as it may be shown: the password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@")[-1] if "@" in url else url


def without_password(url: str) -> str:
    """``url`` with no password in it (the form a grading root records)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url
    if parsed.password is None:
        return url
    from sqlalchemy.engine import URL

    bare = URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port,
                      parsed.database, parsed.query)
    return bare.render_as_string(hide_password=False)


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password is not None
    except (ArgumentError, ValueError):
        return False


def same_database(first: str, second: str) -> bool:
    """Whether two URLs name the same database: the same kind, server (host and port) and
    database (a SQLite file by its resolved path), whatever the driver, user or password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    def identity(url: str) -> tuple[str, str, int | None, str] | str:
        try:
            parsed = make_url(normalize(url.strip()))
        except (ArgumentError, ValueError):
            return url
        backend = parsed.get_backend_name()
        database = parsed.database or ""
        path = sqlite_file(url) if backend == "sqlite" else None
        if path is not None:
            database = str(path.resolve())
        port = parsed.port or DEFAULT_PORTS.get(backend)
        return backend, (parsed.host or "").lower(), port, database

    return identity(first) == identity(second)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for a database server or an in-memory database)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def check(url: str, *, connect: bool = True, option: str = "--db-url") -> str:
    """The URL to use for ``url`` (driver filled in); a :class:`CourseError` naming ``option``
    and what was expected if it is malformed, names a database kind or driver that is not
    installed, or (``connect``) the database cannot be reached."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    url = normalize(url.strip())
    shown = masked(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise CourseError(f"{option} {shown}: not a database URL ({exc}); expected e.g. "
                          f"{EXAMPLES}") from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise CourseError(f"{option} {shown}: unknown database kind "
                          f"{parsed.drivername!r}; expected e.g. {EXAMPLES}") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        hint = (f"install it with `{POSTGRES_INSTALL}`" if parsed.get_backend_name()
                == "postgresql" else "install it into .venv")
        raise CourseError(f"{option} {shown}: the database driver {parsed.get_driver_name()!r} "
                          f"is not installed ({exc.name or exc}); {hint}") from None
    path = sqlite_file(url)
    if path is not None:
        if not path.is_absolute():
            raise CourseError(f"{option} {shown}: give the SQLite file as an absolute path "
                              "(four slashes: sqlite:////path/gradebook.db)")
        if not path.parent.is_dir():
            raise CourseError(f"{option} {shown}: the folder {path.parent} does not exist")
        if path.exists() and not path.is_file():
            raise CourseError(f"{option} {shown}: {path} is not a file")
        if not path.exists():
            # opening would create the file: a command refused later must leave nothing
            if not os.access(path.parent, os.W_OK | os.X_OK):
                raise CourseError(f"{option} {shown}: cannot create {path.name} in "
                                  f"{path.parent} (no write permission)")
            return url
    if not connect:
        return url
    args = {"connect_timeout": CONNECT_TIMEOUT} if parsed.get_backend_name() == "postgresql" \
        else {}
    engine = None
    try:
        engine = create_engine(url, connect_args=args)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = next((line.strip() for line in str(orig).splitlines() if line.strip()),
                     type(orig).__name__)
        hint = (f"; {PASSWORD_HINT}" if parsed.get_backend_name() == "postgresql"
                and "password" in str(orig).lower() else "")
        raise CourseError(f"{option} {shown}: cannot open the database: {first}{hint}") \
            from None
    finally:
        if engine is not None:
            engine.dispose()
    return url
