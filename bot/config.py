"""Settings from the environment (or a ``.env`` file beside the project), checked at start-up.

A missing or malformed setting stops start-up with one line that names it and says what is
expected; secrets are never echoed back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line naming it."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a .env file (comments, blank lines and ``export`` allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path.name} line {number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    """Everything the bot can be configured with."""

    telegram_token: str = field(default="", repr=False)
    telegram_api_base_url: str = ""
    database_path: Path = Path("data/saathi.sqlite3")
    database_url: str = field(default="", repr=False)  # postgresql://… (may hold a password): PostgreSQL instead of the file
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    log_level: str = "INFO"
    broadcast_rate: float = 25.0
    whatsapp_rate: float = 80.0  # messages a second on WhatsApp: Cloud API throughput per business number
    lead_sla_hours: float = 48.0
    bot_username: str = "ExportSaathiBot"
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    whatsapp_token: str = field(default="", repr=False)
    whatsapp_phone_number_id: str = ""
    whatsapp_app_secret: str = field(default="", repr=False)
    whatsapp_verify_token: str = field(default="", repr=False)
    whatsapp_api_base_url: str = "https://graph.facebook.com/v21.0"
    whatsapp_port: int = 8080
    whatsapp_admin_numbers: frozenset[str] = field(default_factory=frozenset)  # digits, country code first
    whatsapp_display_number: str = ""  # the business's own number (digits), for wa.me invite links
    db_busy_timeout: float = 5.0  # seconds a statement waits for a lock another process holds
    dashboard_url: str = ""  # the dashboard's public base (sign-in links); default: the webhook's host
    dashboard_port: int = 0  # without a webhook server: the dashboard's own port (0: no dashboard)

    @property
    def dashboard_enabled(self) -> bool:
        """Whether a server carries the dashboard: a webhook's (Telegram or WhatsApp), or its own port."""
        return bool(self.webhook_url or self.whatsapp_token or self.dashboard_port)

    def secrets(self) -> list[str]:
        """Every secret setting, for the log redaction (the token, the webhook secret, WhatsApp's three)."""
        return [s for s in (self.telegram_token, self.webhook_secret, self.whatsapp_token, self.whatsapp_app_secret,
                            self.whatsapp_verify_token, self.database_url, database_password(self.database_url)) if s]


    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
        """Settings from ``environ`` (default: the process environment) over ``env_file``."""
        merged = read_env_file(env_file) if env_file else {}
        merged.update(os.environ if environ is None else environ)
        get = lambda name: merged.get(name, "").strip()  # noqa: E731

        token = get("TELEGRAM_BOT_TOKEN")
        if token and (":" not in token or not token.split(":", 1)[0].isdigit()):
            raise ConfigError("TELEGRAM_BOT_TOKEN: does not look like a bot token from @BotFather (digits:letters)")
        base_url = get("TELEGRAM_API_BASE_URL")
        if base_url and not base_url.startswith(("http://", "https://")):
            raise ConfigError("TELEGRAM_API_BASE_URL: must start with http:// or https://")
        admin_ids: set[int] = set()
        for part in get("ADMIN_IDS").replace(" ", "").split(","):
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                raise ConfigError(f"ADMIN_IDS: {part!r} is not a Telegram user id; expected numbers like 12345,67890")
            admin_ids.add(int(part))
        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")
        webhook_url = get("WEBHOOK_URL")
        webhook_secret = get("WEBHOOK_SECRET")
        if webhook_url:
            if not webhook_url.startswith("https://"):
                raise ConfigError("WEBHOOK_URL: Telegram only calls https:// webhook URLs")
            if not webhook_secret or not all(c.isalnum() or c in "_-" for c in webhook_secret) or len(webhook_secret) > 256:
                raise ConfigError("WEBHOOK_SECRET: required with WEBHOOK_URL; 1-256 characters of A-Z, a-z, 0-9, _ and -")
        port = get("WEBHOOK_PORT") or "8443"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("WEBHOOK_PORT: must be a port number")
        whatsapp = {name: get(name) for name in ("WHATSAPP_TOKEN", "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN")}
        if whatsapp["WHATSAPP_TOKEN"]:
            missing = [name for name, value in whatsapp.items() if not value]
            if missing:
                raise ConfigError(f"{missing[0]}: required with WHATSAPP_TOKEN (see the app's WhatsApp settings in Meta's developer console)")
            if not whatsapp["WHATSAPP_PHONE_NUMBER_ID"].isdigit():
                raise ConfigError("WHATSAPP_PHONE_NUMBER_ID: the phone number ID from the WhatsApp API setup page (digits only)")
        whatsapp_base = (get("WHATSAPP_API_BASE_URL") or cls.whatsapp_api_base_url).rstrip("/")
        if not whatsapp_base.startswith(("http://", "https://")):
            raise ConfigError("WHATSAPP_API_BASE_URL: must start with http:// or https://")
        whatsapp_port = get("WHATSAPP_PORT") or "8080"
        if not whatsapp_port.isdigit() or not 0 < int(whatsapp_port) < 65536:
            raise ConfigError("WHATSAPP_PORT: must be a port number")
        whatsapp_admins: set[str] = set()
        for index, part in enumerate(get("WHATSAPP_ADMIN_NUMBERS").split(","), 1):
            if not part.strip():
                continue
            number = whatsapp_number(part)
            if number is None:  # the entry is not echoed: it may be someone's phone number
                raise ConfigError(f"WHATSAPP_ADMIN_NUMBERS: entry {index} is not a phone number in international form; "
                                  "expected country code and number, e.g. 919876543210,+91 98765 43211")
            whatsapp_admins.add(number)
        display = get("WHATSAPP_DISPLAY_NUMBER")
        display_number = whatsapp_number(display) if display else ""
        if display_number is None:
            raise ConfigError("WHATSAPP_DISPLAY_NUMBER: the business's WhatsApp number in international form, "
                              "country code and number, e.g. 919876543210")
        dashboard_url = get("DASHBOARD_URL").rstrip("/")
        if dashboard_url and (not dashboard_url.startswith(("http://", "https://")) or "?" in dashboard_url or "#" in dashboard_url):
            raise ConfigError("DASHBOARD_URL: the dashboard's public address, starting with https:// (or http:// on this machine)")
        dashboard_port = get("DASHBOARD_PORT") or "0"
        if not dashboard_port.isdigit() or not 0 <= int(dashboard_port) < 65536:
            raise ConfigError("DASHBOARD_PORT: must be a port number (or 0 for no dashboard server of its own)")
        return cls(
            dashboard_url=dashboard_url,
            dashboard_port=int(dashboard_port),
            whatsapp_admin_numbers=frozenset(whatsapp_admins),
            whatsapp_display_number=display_number,
            whatsapp_token=whatsapp["WHATSAPP_TOKEN"],
            whatsapp_phone_number_id=whatsapp["WHATSAPP_PHONE_NUMBER_ID"],
            whatsapp_app_secret=whatsapp["WHATSAPP_APP_SECRET"],
            whatsapp_verify_token=whatsapp["WHATSAPP_VERIFY_TOKEN"],
            whatsapp_api_base_url=whatsapp_base,
            whatsapp_port=int(whatsapp_port),
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            webhook_listen=get("WEBHOOK_LISTEN") or "0.0.0.0",
            webhook_port=int(port),
            telegram_token=token,
            telegram_api_base_url=base_url,
            database_path=Path(get("DATABASE_PATH") or cls.database_path),
            database_url=_database_url(get("DATABASE_URL")),
            admin_ids=frozenset(admin_ids),
            log_level=level,
            broadcast_rate=_positive(get("BROADCAST_RATE"), "BROADCAST_RATE", 25.0),
            whatsapp_rate=_positive(get("WHATSAPP_RATE"), "WHATSAPP_RATE", 80.0),
            lead_sla_hours=_positive(get("LEAD_SLA_HOURS"), "LEAD_SLA_HOURS", 48.0),
            db_busy_timeout=_positive(get("DB_BUSY_TIMEOUT"), "DB_BUSY_TIMEOUT", 5.0),
            bot_username=get("BOT_USERNAME") or cls.bot_username,
        )


def _database_url(url: str) -> str:
    """DATABASE_URL: empty (the SQLite file) or a postgresql:// URL."""
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("DATABASE_URL: must be a postgresql:// URL (leave it unset for the SQLite file DATABASE_PATH)")
    return url


def database_password(url: str) -> str:
    """The password in a database URL ("" when there is none), so the log redaction knows it."""
    if not url:
        return ""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return ""
    return unquote(password) if password else ""


def env_file_warning(path: Path = Path(".env")) -> str | None:
    """A warning when the ``.env`` file (it holds the bot's tokens) can be changed by other users."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o022:
        who = "group and others" if mode & 0o022 == 0o022 else "others" if mode & 0o002 else "its group"
        return (f"warning: {path} can be written by {who} (mode {mode & 0o777:o}); whoever can change it controls the "
                f"bot's tokens. Run: chmod 600 {path}")
    return None


def whatsapp_number(raw: str) -> str | None:
    """A phone number in international form as WhatsApp writes it (digits, country code first), or ``None``.

    ``+91 98765 43210`` and ``919876543210`` are the same number; a leading 0 (a national or
    trunk prefix) or fewer than 8 or more than 15 digits is not one.
    """
    text = "".join(raw.split())
    if text.startswith("+"):
        text = text[1:]
    if not (text.isascii() and text.isdigit()) or text.startswith("0") or not 8 <= len(text) <= 15:
        return None
    return text


def _positive(raw: str, name: str, default: float) -> float:
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{name}: must be a positive number, got {raw!r}")
    return value
