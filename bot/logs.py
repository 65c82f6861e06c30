"""Logging set-up that never writes a secret, an owner's words or a whole phone number.

The HTTP client logs request URLs, and Telegram puts the bot token in every URL; owners'
phone numbers can appear in error messages; at DEBUG python-telegram-bot logs every Bot API
call with its parameters and its answer (owners' names, what they typed, the webhook secret).
A filter on the root handler rewrites all of it before anything is written: secrets become
``***``, phone numbers are masked and the payloads of Bot API calls are left out.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from .core.normalize import mask_phone

_PHONE = re.compile(r"(?<![\d])(?:\+?91[\s-]?)?[6-9]\d{4}[\s-]?\d{5}(?![\d])")


# python-telegram-bot at DEBUG: "Calling Bot API endpoint `sendMessage` with parameters `{…}`",
# "Call to Bot API endpoint `getUpdates` finished with return value `[…]`" and "Processing update
# Update(…)": the updates and messages themselves, names and all. The endpoint stays, the payload goes.
_PAYLOAD = re.compile(
    r"((?:with parameters|finished with return value|received data:|Processing update|Dropping pending update:) )`?.*", re.S
)


class RedactingFilter(logging.Filter):
    """Replaces the given secrets with ``***`` and masks Indian mobile numbers."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        """``text`` with secrets and phone numbers hidden."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _PAYLOAD.sub(r"\1(left out of the log)", text)
        return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        record.msg, record.args = message, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def setup_logging(level: str, secrets: list[str], stream: TextIO | None = None) -> None:
    """Log to stderr (or ``stream``) at ``level`` with secrets, payloads and phone numbers redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines are noise at INFO and carry the token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at DEBUG (owners' answers among them).
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
    # psycopg and its pool: connection chatter at DEBUG, and their messages may quote the connection string.
    logging.getLogger("psycopg").setLevel(max(logging.WARNING, root.level))
