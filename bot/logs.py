"""Logging set-up that never writes a secret or a whole phone number.

The HTTP client logs request URLs, and Telegram puts the bot token in every URL; owners'
phone numbers can appear in error messages. A filter on the root handler rewrites both before
anything is written.
"""

from __future__ import annotations

import logging
import re

from .core.normalize import mask_phone

_PHONE = re.compile(r"(?<![\d])(?:\+?91[\s-]?)?[6-9]\d{4}[\s-]?\d{5}(?![\d])")


class RedactingFilter(logging.Filter):
    """Replaces the given secrets with ``***`` and masks Indian mobile numbers."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        """``text`` with secrets and phone numbers hidden."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = self.redact(record.getMessage())
        record.msg, record.args = message, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def setup_logging(level: str, secrets: list[str]) -> None:
    """Log to stderr at ``level`` with secrets and phone numbers redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines are noise at INFO and carry the token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
