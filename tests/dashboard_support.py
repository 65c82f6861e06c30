"""The dashboard's tests: the real bot with its dashboard server, the Bot API stand-in, and Debian's chromium.

``browser()`` launches the system chromium headless through Playwright. Where there is none (or
Playwright is missing) the browser tests are skipped, except under CI (``CI=true``), where that
is a failure: a missing browser never passes as green.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str | None:
    """The system chromium (``CHROMIUM`` overrides)."""
    wanted = os.environ.get("CHROMIUM")
    if wanted:
        return wanted if os.path.exists(wanted) else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests need chromium and Playwright under CI: {why}")
    pytest.skip(why)


@asynccontextmanager
async def browser() -> AsyncIterator[object]:
    """A headless system chromium driven by Playwright."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    path = chromium_path()
    if path is None:
        _unavailable("no chromium here (apt-get install chromium)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            await b.close()


def init_data(bot_token: str, user: dict, auth_date: int, **extra: str) -> str:
    """Mini App init data signed as Telegram signs it (its docs: "Validating data received via the Mini App")."""
    fields = {"auth_date": str(auth_date), "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
              "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False), **extra}
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)
