"""Shared fixtures: the real shipped content and catalogs, loaded once per test session."""

from __future__ import annotations

import pytest

from bot.content import load_content
from bot.core.content import Content
from bot.core import features
from bot.core.engine import Engine
from bot.i18n import Catalogs


@pytest.fixture(scope="session")
def content() -> Content:
    """The content shipped in ``conversations/``."""
    return load_content()


@pytest.fixture(scope="session")
def catalogs() -> Catalogs:
    """The translations shipped in ``locales/``."""
    return Catalogs.load()


@pytest.fixture(scope="session")
def engine(content: Content, catalogs: Catalogs) -> Engine:
    """The pure conversation engine over the shipped content (it holds no per-user state)."""
    return Engine(content, catalogs, features.standard())


# ----------------------------------------------------------------- the two storage engines
@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster for the session (``tests/pg_server.py``); started on first use.

    Where none can start, PostgreSQL tests are skipped, except under CI (``CI=true``): there
    that is a failure, so a missing server never passes as green.
    """
    import os

    from tests.pg_server import PgServer, PgUnavailable

    server = PgServer()
    try:
        server.start()
    except PgUnavailable as exc:
        server.stop()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is needed under CI and could not start: {exc}")
        pytest.skip(f"no PostgreSQL server here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """Settings keywords for a fresh database on each engine: the SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return {"database_path": tmp_path / "saathi.sqlite3"}
    server = request.getfixturevalue("pg_server")
    return {"database_path": tmp_path / "unused.sqlite3", "database_url": server.new_database()}
