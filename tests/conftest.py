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
