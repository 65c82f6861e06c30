"""A local stand-in for the Telegram Bot API, for end-to-end tests and benchmarks.

`BotApiStandin` is an aiohttp server on 127.0.0.1 that speaks the Bot API over HTTP closely
enough that the real python-telegram-bot `Bot`/`Application` runs against it unchanged
(``ApplicationBuilder().token(api.token).base_url(api.base_url)``), and that refuses what
Telegram refuses (4096-character texts counted in UTF-16, 64-byte callback_data, malformed HTML,
unknown chats, blocked users, flood control), so a test cannot pass with a bot that would fail
in production.

Usage::

    async with BotApiStandin() as api:
        api.add_user(42, language_code="hi")
        ...start the PTB Application with base_url=api.base_url...
        api.send_text(42, "/start")                    # the user types; returns the update_id
        [welcome] = await api.wait_for_messages(42, 1)  # what the bot answered
        api.tap_button(42, welcome, "English")          # the user taps a button by its label
        await api.wait_idle()                           # the bot has gone quiet
        assert api.refusals == []                       # it never sent anything Telegram refuses

Waiting, race-free by construction:

- ``wait_for_messages(chat_id, count)`` returns the next ``count`` messages the bot *sent* to the
  chat since the previous ``wait_for_messages``/``wait_for_message``/``new_messages`` call for
  that chat (a per-chat cursor, so a message that arrives before the wait starts is not lost).
- ``wait_for_message(chat_id, predicate)`` advances that cursor to the next sent message that
  matches (skipping the others).
- ``wait_until(chat_id, predicate)`` waits on *state*: until some message of the chat, as it is
  now (after edits), matches; it does not move the cursor. Use it for edits.
- ``wait_idle(quiet)`` waits until every queued update has been fetched, no bot request is in
  flight, and none has arrived for ``quiet`` seconds (long polls do not count).

Every wait raises ``TimeoutError`` naming what did arrive and the latest refusals.

Observing: ``messages(chat_id)``/``last_message``/``message`` give `BotMessage` records (plain
text, raw html, buttons, edits, deleted flag, uploaded bytes); ``calls`` logs every request as
(method, params); ``callback_answers``, ``commands``/``menu()`` and ``stats`` hold the rest.
Refusals (400/401/403/404 answers that the stand-in decided, not the injected faults and not
flood-control 429s, which are counted in ``stats.rejected_429``) are recorded in ``refusals``
with Telegram's exact description. Assert on those: PTB strips "Bad Request: " and applies
``str.capitalize()``, so ``BadRequest.message`` reads "Message_too_long", "Chat not found".

Faults: ``fail_next(method, count, status=...)``, ``timeout_next(method, count, delay)``,
``block(user_id)``, and flood control with ``rate_limit`` (global, messages a second) and
``per_chat_limit``, each answering 429 with ``retry_after`` the way Telegram does.

Deliberate differences from Telegram: a bare ``&`` that is not a character reference is refused
(Telegram's documentation requires ``&amp;``; tdlib itself passes it through, pass
``strict_ampersand=False`` for that); parse_mode Markdown/MarkdownV2 is refused rather than
half-implemented; only private chats exist (chat id == user id); setWebhook is recorded, and
updates are POSTed only to the URL a test gives ``deliver_by_webhook`` (over plain HTTP to
127.0.0.1; Telegram needs HTTPS). The simulation methods (``send_text``, ``tap``...) are plain
synchronous methods and must be called from the event loop that runs the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import aiohttp
from aiohttp import web

T = TypeVar("T")
Params = dict[str, Any]

# Limits from the Bot API documentation.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
MAX_CALLBACK_ANSWER = 200
MAX_COMMANDS = 100
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024

# Telegram's own wording, so tests (and the bot's error handling) see what production says.
CHAT_NOT_FOUND = "Bad Request: chat not found"
BLOCKED = "Forbidden: bot was blocked by the user"
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
TOO_MANY_BUTTONS = "Bad Request: too many buttons"
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
DELETE_NOT_FOUND = "Bad Request: message to delete not found"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CALLBACK_ANSWER_TOO_LONG = "Bad Request: MESSAGE_TOO_LONG"
COMMAND_INVALID = "Bad Request: BOT_COMMAND_INVALID"
COMMAND_DESCRIPTION_INVALID = "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"
TOO_MANY_COMMANDS = "Bad Request: BOT_COMMANDS_TOO_MUCH"
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)

_CHAT_ACTIONS = frozenset(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document "
    "choose_sticker find_location record_video_note upload_video_note".split()
)
# An inline button must carry exactly one of these.
_INLINE_BUTTON_ACTIONS = tuple(
    "callback_data url web_app login_url switch_inline_query switch_inline_query_current_chat "
    "switch_inline_query_chosen_chat copy_text callback_game pay".split()
)
# A reply-keyboard button may carry at most one of these.
_REPLY_BUTTON_REQUESTS = tuple(
    "request_contact request_location request_poll request_users request_chat web_app".split()
)
_COMMAND_SCOPES = frozenset(
    "default all_private_chats all_group_chats all_chat_administrators chat chat_administrators "
    "chat_member".split()
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_LANGUAGE_RE = re.compile(r"(?:[a-z]{2})?")
_BOT_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_URL_RE = re.compile(r"(?:https?|tg|ton)://\S+", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# Telegram's HTML dialect
# --------------------------------------------------------------------------------------------


class EntityParseError(ValueError):
    """Malformed Telegram HTML; the message follows tdlib's wording."""


# Telegram's HTML tags and the MessageEntity type each produces.
_ENTITY_TYPE_BY_TAG = {
    **dict.fromkeys(("b", "strong"), "bold"),
    **dict.fromkeys(("i", "em"), "italic"),
    **dict.fromkeys(("u", "ins"), "underline"),
    **dict.fromkeys(("s", "strike", "del"), "strikethrough"),
    **dict.fromkeys(("span", "tg-spoiler"), "spoiler"),
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_SPECIAL = re.compile(r"[<&]")
# tdlib's is_space(): these end a tag name or an attribute.
_HTML_SPACES = frozenset(" \t\r\n\v\0")
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts limits and entity offsets in."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    # tdlib reports positions in UTF-8 bytes; only computed on the error path.
    return len(src[:index].encode("utf-8"))


def _decode_char_ref(src: str, i: int) -> tuple[str, int] | None:
    """Decode the character reference starting at ``src[i] == '&'`` the way tdlib does.

    Returns (character, index after it) or None when it is not a reference. Like tdlib, only
    &lt; &gt; &amp; &quot; and numeric references count, and the closing ';' is optional.
    """
    n = len(src)
    j = i + 1
    if j < n and src[j] == "#":
        j += 1
        value = 0
        hexadecimal = j < n and src[j] == "x"
        if hexadecimal:
            j += 1
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        while j < n and src[j] in digits:
            value = value * (16 if hexadecimal else 10) + int(src[j], 16)
            j += 1
            if value >= 0x10FFFF:
                return None
        if value == 0 or j - i >= 10 or 0xD800 <= value <= 0xDFFF:
            return None
        char = chr(value)
    else:
        while j < n and src[j].isascii() and src[j].isalpha():
            j += 1
        named = _NAMED_ENTITIES.get(src[i + 1 : j])
        if named is None:
            return None
        char = named
    if j < n and src[j] == ";":
        j += 1
    return char, j


def _make_entity(tag: str, start: int, end: int, attrs: dict[str, str]) -> dict[str, Any] | None:
    if end <= start:
        return None  # Telegram drops empty entities silently
    entity: dict[str, Any] = {
        "type": _ENTITY_TYPE_BY_TAG[tag],
        "offset": start,
        "length": end - start,
    }
    if tag == "a":
        if not attrs.get("href"):
            return None
        entity["url"] = attrs["href"]
    elif tag == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif tag == "tg-emoji":
        entity["custom_emoji_id"] = attrs["emoji-id"]
    return entity


def parse_telegram_html(
    src: str, *, strict_ampersand: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into (plain text, MessageEntity dicts).

    Mirrors tdlib's parser (tag set, attribute syntax, error wording) so that whatever passes
    here passes on Telegram. Raises EntityParseError otherwise.
    """
    out: list[str] = []
    pos = 0  # UTF-16 offset in the plain text, for entity offsets
    stack: list[tuple[str, int, dict[str, str]]] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(src)
    while i < n:
        match = _HTML_SPECIAL.search(src, i)
        j = n if match is None else match.start()
        if j > i:
            chunk = src[i:j]
            out.append(chunk)
            pos += utf16_len(chunk)
        if match is None:
            break
        if src[j] == "&":
            decoded = _decode_char_ref(src, j)
            if decoded is None:
                if strict_ampersand:
                    raise EntityParseError(
                        f'Unescaped "&" at byte offset {_byte_offset(src, j)}; write &amp;'
                    )
                out.append("&")
                pos += 1
                i = j + 1
                continue
            char, i = decoded
            out.append(char)
            pos += utf16_len(char)
            continue
        if j + 1 < n and src[j + 1] == "/":
            i = _parse_end_tag(src, j, stack, entities, pos)
        else:
            i = _parse_start_tag(src, j, stack, pos)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    # tdlib orders entities by offset, outer (longer) first.
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _parse_end_tag(
    src: str,
    begin: int,
    stack: list[tuple[str, int, dict[str, str]]],
    entities: list[dict[str, Any]],
    pos: int,
) -> int:
    n = len(src)
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(src, begin)}")
    k = begin + 2
    while k < n and src[k] not in _HTML_SPACES and src[k] != ">":
        k += 1
    name = src[begin + 2 : k].lower()
    while k < n and src[k] in _HTML_SPACES:
        k += 1
    if k >= n or src[k] != ">":
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(src, begin)}")
    tag, start, attrs = stack.pop()
    if name and name != tag:  # tdlib accepts "</>" as "close the innermost tag"
        raise EntityParseError(
            f"Unmatched end tag at byte offset {_byte_offset(src, begin)}, "
            f'expected "</{tag}>", found "</{name}>"'
        )
    entity = _make_entity(tag, start, pos, attrs)
    if entity is not None:
        entities.append(entity)
    return k + 1


def _parse_start_tag(
    src: str, begin: int, stack: list[tuple[str, int, dict[str, str]]], pos: int
) -> int:
    n = len(src)
    offset = _byte_offset  # alias keeps the error lines short
    k = begin + 1
    while k < n and src[k] not in _HTML_SPACES and src[k] != ">":
        k += 1
    if k >= n:
        raise EntityParseError(f"Unclosed start tag at byte offset {offset(src, begin)}")
    tag = src[begin + 1 : k].lower()
    if tag not in _ENTITY_TYPE_BY_TAG:
        raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {offset(src, begin)}')
    attrs: dict[str, str] = {}
    while True:
        while k < n and src[k] in _HTML_SPACES:
            k += 1
        if k >= n:
            raise EntityParseError(
                f'Unclosed start tag "{tag}" at byte offset {offset(src, begin)}'
            )
        if src[k] == ">":
            break
        name_start = k
        while k < n and src[k] not in _HTML_SPACES and src[k] not in "=>":
            k += 1
        name = src[name_start:k].lower()
        if not name:
            raise EntityParseError(
                f'Empty attribute name in the tag "{tag}" at byte offset {offset(src, begin)}'
            )
        while k < n and src[k] in _HTML_SPACES:
            k += 1
        if k >= n or src[k] != "=":
            if tag == "blockquote" and name == "expandable":
                attrs[name] = ""
                continue
            raise EntityParseError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                f"at byte offset {offset(src, begin)}"
            )
        k += 1
        while k < n and src[k] in _HTML_SPACES:
            k += 1
        if k >= n:
            raise EntityParseError(
                f'Unclosed start tag "{tag}" at byte offset {offset(src, begin)}'
            )
        if src[k] in "'\"":
            quote = src[k]
            k += 1
            value_chars: list[str] = []
            while k < n and src[k] != quote:
                decoded = _decode_char_ref(src, k) if src[k] == "&" else None
                if decoded is not None:
                    value_chars.append(decoded[0])
                    k = decoded[1]
                else:
                    value_chars.append(src[k])
                    k += 1
            if k >= n:
                raise EntityParseError(f"Unclosed start tag at byte offset {offset(src, begin)}")
            k += 1
            value = "".join(value_chars)
        else:
            # An unquoted "name token": letters, digits, periods, hyphens.
            value_start = k
            while k < n and ((src[k].isascii() and src[k].isalnum()) or src[k] in ".-"):
                k += 1
            value = src[value_start:k].lower()
            if k >= n or (src[k] not in _HTML_SPACES and src[k] != ">"):
                raise EntityParseError(
                    f"Unexpected end of name token at byte offset {offset(src, value_start)}"
                )
        attrs[name] = value
    if tag == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError(
            f'Tag "span" must have class "tg-spoiler" at byte offset {offset(src, begin)}'
        )
    if tag == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise EntityParseError(
            f"Custom emoji identifier must be specified at byte offset {offset(src, begin)}"
        )
    stack.append((tag, pos, attrs))
    return k + 1


def _strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace like Telegram does, shifting entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


# --------------------------------------------------------------------------------------------
# Records visible to tests
# --------------------------------------------------------------------------------------------


class Refusal(NamedTuple):
    """A request the stand-in refused as Telegram would."""

    method: str
    params: Params
    description: str


class CallbackAnswer(NamedTuple):
    """An answerCallbackQuery the bot made."""

    query_id: str
    text: str | None
    show_alert: bool


@dataclass(slots=True)
class Upload:
    """A file the bot uploaded in a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:  # keep call logs readable: no raw bytes
        return f"Upload({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"


@dataclass(slots=True)
class Revision:
    """One version of a bot message's content."""

    method: str
    text: str | None
    html: str | None
    reply_markup: dict[str, Any] | None
    date: int


@dataclass(slots=True, eq=False)
class BotMessage:
    """A message the bot sent, in its current state (after edits).

    ``text`` is the plain text the user sees (HTML tags removed, entities decoded, trimmed);
    ``html`` the raw text or caption exactly as sent. Media messages keep ``text`` None and have
    ``caption``, plus the uploaded bytes in ``photo``/``document``. ``original`` is the content
    as first sent and ``edits`` one Revision per successful edit, holding the content after it.
    """

    message_id: int
    chat_id: int
    date: int
    original: Revision
    kind: str = "text"  # "text" | "photo" | "document"
    text: str | None = None
    html: str | None = None
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    reply_markup: dict[str, Any] | None = None
    edits: list[Revision] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    photo: bytes | None = None
    document: bytes | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_id: str | None = None

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        """Inline keyboard buttons, flattened row by row, as (label, callback_data)."""
        markup = self.reply_markup or {}
        return [
            (button.get("text", ""), button.get("callback_data"))
            for row in markup.get("inline_keyboard", ())
            for button in row
        ]

    @property
    def keyboard(self) -> list[str]:
        """Reply-keyboard button labels, flattened (empty for inline keyboards)."""
        markup = self.reply_markup or {}
        return [
            button if isinstance(button, str) else button.get("text", "")
            for row in markup.get("keyboard", ())
            for button in row
        ]


@dataclass(slots=True)
class StandinUser:
    """A Telegram user who has a private chat with the bot."""

    user_id: int
    first_name: str = "Asha"
    language_code: str | None = "hi"
    username: str | None = None
    last_name: str | None = None

    def as_user(self) -> dict[str, Any]:
        """The Bot API User object."""
        user: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value:
                user[key] = value
        return user

    def as_chat(self) -> dict[str, Any]:
        """The Bot API Chat object of the private chat with this user."""
        chat: dict[str, Any] = {
            "id": self.user_id,
            "type": "private",
            "first_name": self.first_name,
        }
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat


@dataclass(slots=True)
class Stats:
    """Counters for benchmarks and assertions."""

    requests: int = 0
    sent_ok: int = 0
    edited_ok: int = 0
    rejected_429: int = 0
    refused: int = 0
    injected_failures: int = 0
    injected_timeouts: int = 0


class _ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


class _TokenBucket:
    """Flood control: ``rate`` tokens a second, bursts up to ``capacity``. O(1) per request."""

    __slots__ = ("_capacity", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, capacity: float) -> None:
        self._rate = rate
        self._capacity = capacity
        self._tokens = capacity
        self._stamp = time.monotonic()

    def take(self, now: float) -> float:
        """Take a token: 0.0 on success, else the seconds until one is available."""
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def refund(self) -> None:
        """Give back the token of a request that another limit refused."""
        self._tokens = min(self._capacity, self._tokens + 1.0)


@dataclass(slots=True)
class _Fault:
    kind: str  # "fail" | "timeout"
    remaining: int
    status: int = 500
    retry_after: int | None = None
    description: str | None = None
    delay: float = 0.0
    deliver: bool = False


_DEFAULT_FAULT_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    403: BLOCKED,
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


@dataclass(slots=True)
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None
    mime_type: str | None


class _Chat:
    """State of one private chat: a message id counter shared by user and bot, the bot's
    messages in order and by id, and the test's read cursor."""

    __slots__ = (
        "blocked",
        "bot_messages",
        "bucket",
        "by_id",
        "chat_dict",
        "cursor",
        "last_message_id",
        "user",
        "user_dict",
        "user_message_ids",
    )

    def __init__(self, user: StandinUser) -> None:
        self.user = user
        self.user_dict = user.as_user()
        self.chat_dict = user.as_chat()
        self.last_message_id = 0
        self.bot_messages: list[BotMessage] = []
        self.by_id: dict[int, BotMessage] = {}
        self.user_message_ids: set[int] = set()
        self.cursor = 0
        self.blocked = False
        self.bucket: _TokenBucket | None = None

    def next_message_id(self) -> int:
        self.last_message_id += 1
        return self.last_message_id


# --------------------------------------------------------------------------------------------
# Parameter decoding: PTB posts every value as a form field, strings raw and everything else
# JSON-encoded ("123", "true", '{"inline_keyboard": ...}'); other clients may send JSON bodies
# with native values, so every accessor accepts both.
# --------------------------------------------------------------------------------------------


def _str_param(params: Params, name: str) -> str | None:
    value = params.get(name)
    if value is None or isinstance(value, Upload):
        return None
    return value if isinstance(value, str) else str(value)


def _int_param(params: Params, name: str, *, missing: str | None = None, default: int = 0) -> int:
    value = params.get(name)
    if value is None or value == "":
        if missing is not None:
            raise _bad(missing)
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"wrong parameter {name} specified") from None


def _float_param(params: Params, name: str, default: float = 0.0) -> float:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad(f"wrong parameter {name} specified") from None


def _bool_param(params: Params, name: str) -> bool:
    return params.get(name) in (True, 1, "true", "True", "1")


def _json_param(params: Params, name: str, error: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        if not value:
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise _bad(error) from None
    return value


async def _read_params(request: web.Request) -> Params:
    """Merge query-string and body parameters (urlencoded, multipart or JSON)."""
    params: Params = dict(request.query)
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise _bad("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise _bad("JSON object expected")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                params[key] = value
    return params


def _json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def _error_response(error: _ApiError) -> web.Response:
    payload: dict[str, Any] = {
        "ok": False,
        "error_code": error.code,
        "description": error.description,
    }
    if error.retry_after is not None:
        payload["parameters"] = {"retry_after": error.retry_after}
    return _json_response(payload, error.code)


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class BotApiStandin:
    """A Telegram Bot API server on 127.0.0.1 for tests; see the module docstring."""

    #: With ``per_chat_limit``, a chat takes about one message a second after a burst of this many.
    PER_CHAT_BURST = 3
    #: How many past updates ``redeliver`` can find.
    UPDATE_HISTORY = 10_000

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        rate_limit: float | None = None,
        per_chat_limit: bool = False,
        strict_ampersand: bool = True,
        bot_username: str = "export_saathi_test_bot",
        bot_first_name: str = "Export Saathi",
    ) -> None:
        """``rate_limit``: messages a second across all chats before 429s (None: unlimited)."""
        self.token = token
        self._strict_ampersand = strict_ampersand
        self._per_chat_limit = per_chat_limit
        self._bucket = _TokenBucket(rate_limit, max(1.0, rate_limit)) if rate_limit else None
        bot_id = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        # Message.from carries only the basic User fields; getMe adds the capability flags.
        self._bot_sender = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}

        self.calls: list[tuple[str, Params]] = []
        self.refusals: list[Refusal] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.stats = Stats()
        self.webhook_url = ""
        self.webhook_calls: list[tuple[str, Params]] = []  # methods given as the answer to a webhook request
        self._push_task: asyncio.Task | None = None

        self._chats: dict[int, _Chat] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}  # by chat id; None: every private chat's default
        self._open_queries: set[str] = set()
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._ids = itertools.count(1)  # file and callback-query ids

        # Updates: pending until confirmed by a getUpdates offset, as on Telegram.
        self._pending: deque[dict[str, Any]] = deque()
        self._redeliver: deque[dict[str, Any]] = deque()
        self._history: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._next_update_id = 1000
        self._delivered_max = 0
        self._duplicate_next = False
        self._poll_generation = 0

        # Events are replaced on every set so each waiter sees each change exactly once
        # without a Condition lock; setting one with nobody waiting is O(1).
        self._updates_event = asyncio.Event()
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._port = 0

        # getUpdates has no synchronous handler: it is the one method that waits.
        self._methods: dict[str, tuple[str, Callable[[Params], Any] | None]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": None,
                "deleteWebhook": self._delete_webhook,
                "setWebhook": self._set_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "setChatMenuButton": self._set_chat_menu_button,
                "getChatMenuButton": self._get_chat_menu_button,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendChatAction": self._send_chat_action,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "getFile": self._get_file,
                "close": lambda params: True,
                "logOut": lambda params: True,
            }.items()
        }

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._closing = asyncio.Event()  # a stopped stand-in can be started again
        app = web.Application(client_max_size=MAX_DOCUMENT_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # No access log: at benchmark rates it would cost more than the requests themselves.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Wake every long poll and hung request, then close the server."""
        self._closing.set()
        self._wake_polls()
        self._notify()
        if self._push_task is not None:
            self._push_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._push_task
            self._push_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotApiStandin:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """PTB's ``base_url`` (PTB appends the token), e.g. http://127.0.0.1:PORT/bot."""
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        """PTB's ``base_file_url`` for downloading files via getFile."""
        return f"http://127.0.0.1:{self._port}/file/bot"

    # ---- users -------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str = "Asha",
        language_code: str | None = "hi",
        username: str | None = None,
        *,
        last_name: str | None = None,
    ) -> StandinUser:
        """Create (or update) a user with a private chat with the bot."""
        user = StandinUser(user_id, first_name, language_code, username, last_name)
        chat = self._chats.get(user_id)
        if chat is None:
            self._chats[user_id] = _Chat(user)
        else:
            chat.user, chat.user_dict, chat.chat_dict = user, user.as_user(), user.as_chat()
        return user

    def user(self, user_id: int) -> StandinUser:
        """The user with this id (KeyError if never added)."""
        return self._chats[user_id].user

    def block(self, user_id: int) -> None:
        """The user blocks the bot: every send to the chat answers 403."""
        self._chat_of(user_id).blocked = True

    def unblock(self, user_id: int) -> None:
        """The user unblocks the bot."""
        self._chat_of(user_id).blocked = False

    # ---- simulating users --------------------------------------------------------------------

    def send_text(self, user_id: int, text: str) -> int:
        """The user sends a text; returns the update_id.

        A leading /command gets its bot_command entity, as Telegram adds it.
        """
        content: dict[str, Any] = {"text": text}
        command = _BOT_COMMAND_RE.match(text)
        if command:
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command.group())}
            ]
        return self._user_message(user_id, content)

    def send_contact(
        self, user_id: int, phone_number: str, own: bool = True, first_name: str | None = None
    ) -> int:
        """The user shares a contact: their own (contact.user_id == user_id) or someone else's."""
        chat = self._ensure_chat(user_id)
        contact = {
            "phone_number": phone_number,
            "first_name": first_name or chat.user.first_name,
            "user_id": user_id if own else user_id + 1,
        }
        return self._user_message(user_id, {"contact": contact})

    def send_sticker(self, user_id: int, emoji: str = "👍") -> int:
        """The user sends a sticker."""
        stored = self._store_file(b"RIFF-sticker", "sticker.webp", "image/webp", "stickers")
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": len(stored.data),
        }
        return self._user_message(user_id, {"sticker": sticker})

    def send_voice(self, user_id: int, duration: int = 3, data: bytes = b"OggS-voice") -> int:
        """The user sends a voice note."""
        stored = self._store_file(data, "voice.ogg", "audio/ogg", "voice")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(data),
        }
        return self._user_message(user_id, {"voice": voice})

    def send_photo(
        self, user_id: int, data: bytes = b"\xff\xd8\xff-photo", caption: str | None = None
    ) -> int:
        """The user sends a photo (downloadable through getFile)."""
        stored = self._store_file(data, "photo.jpg", "image/jpeg", "photos")
        sizes = [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": side,
                "height": side,
                "file_size": len(data),
            }
            for side in (90, 320)
        ]
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        return self._user_message(user_id, content)

    def send_location(
        self, user_id: int, latitude: float = 28.6139, longitude: float = 77.2090
    ) -> int:
        """The user shares a location."""
        return self._user_message(
            user_id, {"location": {"latitude": latitude, "longitude": longitude}}
        )

    def tap(self, user_id: int, message_id: int, callback_data: str) -> int:
        """The user taps a callback button on a bot message; the update carries the message as
        it is now. ``callback_data`` is not checked against the keyboard (use ``tap_button``
        for that), so tests can forge stale or hostile payloads."""
        chat = self._chat_of(user_id)
        message = chat.by_id.get(message_id)
        if message is None or message.deleted:
            raise LookupError(f"chat {user_id} has no bot message {message_id} to tap")
        query_id = str(next(self._ids))
        self._open_queries.add(query_id)
        query = {
            "id": query_id,
            "from": chat.user_dict,
            "message": self._message_dict(message),
            "chat_instance": str(8_000_000_000 + user_id),
            "data": callback_data,
        }
        return self._enqueue({"callback_query": query})

    def tap_button(self, user_id: int, message: BotMessage | int, label_or_index: str | int) -> int:
        """Tap the button with this label (or flat index) on the message's current keyboard.

        Raises LookupError when the button does not exist or has no callback_data.
        """
        if not isinstance(message, BotMessage):
            message = self.message(user_id, message)
        buttons = message.buttons
        if isinstance(label_or_index, int):
            if not 0 <= label_or_index < len(buttons):
                raise LookupError(
                    f"message {message.message_id} has no button #{label_or_index}: {buttons}"
                )
            label, data = buttons[label_or_index]
        else:
            matches = [button for button in buttons if button[0] == label_or_index]
            if not matches:
                raise LookupError(
                    f"message {message.message_id} has no button {label_or_index!r}; "
                    f"it has {[text for text, _ in buttons]}"
                )
            label, data = matches[0]
        if data is None:
            raise LookupError(f"button {label!r} has no callback_data")
        return self.tap(user_id, message.message_id, data)

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (update_id assigned when missing). Returns the update_id."""
        return self._enqueue(dict(update))

    def deliver_by_webhook(self, url: str, secret: str, *, connections: int = 40) -> None:
        """From now on POST every update to ``url``, as Telegram does once a webhook is set.

        As Telegram: the ``secret`` goes in ``X-Telegram-Bot-Api-Secret-Token``; up to
        ``connections`` requests are open at once, one at a time per chat, in order; an update
        whose answer is not 200 is sent again (after a short pause); a Bot API method given in a
        200 answer's JSON body (``{"method": "answerCallbackQuery", ...}``) is carried out, and
        nobody learns how it went (a refusal is still counted in ``refusals``). Such calls are
        in ``webhook_calls``, not in ``calls``: they cost the bot no request.
        """
        self._push_task = asyncio.create_task(self._push_loop(url, secret, connections))

    async def _push_loop(self, url: str, secret: str, connections: int) -> None:
        gate = asyncio.Semaphore(connections)
        chats: dict[int, asyncio.Lock] = {}
        running: set[asyncio.Task] = set()
        async with aiohttp.ClientSession() as http:
            while not self._closing.is_set():
                event = self._updates_event
                batch = self._take_batch(100)
                self._confirm(self._delivered_max + 1)  # handed to the pushers: never fetched again
                if not batch:
                    await event.wait()
                    continue
                for update in batch:
                    body = update.get("message") or update.get("callback_query") or {}
                    chat_id = (body.get("chat") or body.get("from") or {}).get("id", 0)
                    lock = chats.setdefault(chat_id, asyncio.Lock())
                    self._in_flight += 1  # wait_idle waits for the answer too
                    task = asyncio.create_task(self._push(http, url, secret, update, gate, lock))
                    running.add(task)
                    task.add_done_callback(running.discard)

    async def _push(self, http: aiohttp.ClientSession, url: str, secret: str, update: dict[str, Any],
                    gate: asyncio.Semaphore, lock: asyncio.Lock) -> None:
        try:
            async with lock, gate:
                while not self._closing.is_set():
                    try:
                        async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as resp:
                            answer = await resp.read() if resp.status == 200 else None
                    except aiohttp.ClientError:
                        answer = None
                    if answer is not None:
                        await self._webhook_method(answer)
                        return
                    await asyncio.sleep(0.2)
        finally:
            self._in_flight -= 1
            self._last_activity = time.monotonic()
            self._notify()

    async def _webhook_method(self, answer: bytes) -> None:
        try:
            params = json.loads(answer) if answer.strip() else None
        except ValueError:
            return  # Telegram ignores an answer it cannot read
        if not isinstance(params, dict) or not isinstance(params.get("method"), str):
            return
        entry = self._methods.get(params.pop("method").lower())
        if entry is None or entry[1] is None:
            return
        self.webhook_calls.append((entry[0], params))
        await self._dispatch(entry[0], entry[1], params)

    def redeliver(self, update_id: int) -> None:
        """Deliver an already delivered update once more, even if confirmed (dedup tests)."""
        self._redeliver.append(self._history[update_id])
        self._wake_polls()

    def duplicate_next_delivery(self) -> None:
        """The next non-empty getUpdates batch is delivered twice (as after a lost confirmation)."""
        self._duplicate_next = True

    # ---- observing the bot -------------------------------------------------------------------

    def messages(self, chat_id: int) -> list[BotMessage]:
        """Every message the bot sent to the chat, in order (deleted ones flagged)."""
        chat = self._chats.get(chat_id)
        return list(chat.bot_messages) if chat else []

    def last_message(self, chat_id: int) -> BotMessage | None:
        """The latest message the bot sent to the chat, or None."""
        chat = self._chats.get(chat_id)
        return chat.bot_messages[-1] if chat and chat.bot_messages else None

    def message(self, chat_id: int, message_id: int) -> BotMessage:
        """A bot message by id (KeyError if there is none)."""
        return self._chat_of(chat_id).by_id[message_id]

    def new_messages(self, chat_id: int) -> list[BotMessage]:
        """Messages sent since the chat's cursor, without waiting; advances the cursor."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        fresh = chat.bot_messages[chat.cursor :]
        chat.cursor = len(chat.bot_messages)
        return fresh

    async def wait_for_messages(
        self, chat_id: int, count: int = 1, timeout: float = 10.0
    ) -> list[BotMessage]:
        """The next ``count`` messages sent to the chat after the cursor; advances the cursor."""

        def ready() -> list[BotMessage] | None:
            chat = self._chats.get(chat_id)
            if chat is None or len(chat.bot_messages) - chat.cursor < count:
                return None
            batch = chat.bot_messages[chat.cursor : chat.cursor + count]
            chat.cursor += count
            return batch

        return await self._wait(
            ready, timeout, lambda: f"{count} new message(s) in chat {chat_id}", chat_id
        )

    async def wait_for_message(
        self,
        chat_id: int,
        predicate: Callable[[BotMessage], bool] | None = None,
        timeout: float = 10.0,
    ) -> BotMessage:
        """The next sent message after the cursor that matches; the cursor moves past it."""

        def ready() -> BotMessage | None:
            chat = self._chats.get(chat_id)
            if chat is None:
                return None
            while chat.cursor < len(chat.bot_messages):
                candidate = chat.bot_messages[chat.cursor]
                chat.cursor += 1
                if predicate is None or predicate(candidate):
                    return candidate
            return None

        return await self._wait(
            ready, timeout, lambda: f"a matching message in chat {chat_id}", chat_id
        )

    async def wait_until(
        self, chat_id: int, predicate: Callable[[BotMessage], bool], timeout: float = 10.0
    ) -> BotMessage:
        """Wait until some bot message of the chat, in its current state, matches (e.g. after
        an edit). The cursor does not move."""

        def ready() -> BotMessage | None:
            chat = self._chats.get(chat_id)
            if chat is None:
                return None
            return next((m for m in reversed(chat.bot_messages) if predicate(m)), None)

        return await self._wait(
            ready, timeout, lambda: f"a message state in chat {chat_id}", chat_id
        )

    async def wait_idle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until all updates were fetched, no request is in flight and none came for
        ``quiet`` seconds. Pick ``quiet`` above the bot's longest silent processing step."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = time.monotonic()
            busy = self._in_flight > 0 or self._has_undelivered()
            idle_for = now - self._last_activity
            if not busy and idle_for >= quiet:
                return
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing.is_set():
                raise TimeoutError(
                    f"bot not idle after {timeout}s (in flight: {self._in_flight}, "
                    f"undelivered updates: {self._has_undelivered()})"
                )
            await self._wait_changed(remaining if busy else min(remaining, quiet - idle_for))

    @property
    def commands(self) -> dict[str, list[tuple[str, str]]]:
        """The default-scope command menus by language code ("" = all languages)."""
        return {
            language: [(c["command"], c["description"]) for c in commands]
            for (scope, language), commands in self._commands.items()
            if scope == "default"
        }

    def menu(self, language_code: str = "", scope: str = "default") -> list[tuple[str, str]]:
        """The command menu for a scope key ("default", "all_private_chats", "chat:42"...)."""
        return [
            (c["command"], c["description"]) for c in self._commands.get((scope, language_code), [])
        ]

    def menu_button(self, chat_id: int | None = None) -> dict[str, Any]:
        """The menu button a chat shows (``None``: the default of every private chat), as Telegram returns it."""
        if chat_id in self._menu_buttons:
            return self._menu_buttons[chat_id]
        return self._menu_buttons.get(None, {"type": "commands"})

    # ---- fault injection ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        count: int = 1,
        *,
        status: int = 500,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """The next ``count`` calls of ``method`` ("*" = any but getUpdates) fail with ``status``.

        The request has no effect. A 429 carries ``retry_after`` (default 1).
        """
        if status == 429:
            retry_after = retry_after or 1
            description = description or f"Too Many Requests: retry after {retry_after}"
        description = description or _DEFAULT_FAULT_DESCRIPTIONS.get(status, f"Error {status}")
        self._add_fault(method, _Fault("fail", count, status, retry_after, description))

    def timeout_next(
        self, method: str, count: int = 1, delay: float = 10.0, *, deliver: bool = False
    ) -> None:
        """The next ``count`` calls of ``method`` hang for ``delay`` seconds (set it above the
        client's read timeout). With ``deliver`` the request takes effect before the hang (the
        response is lost, as when Telegram sent the message but the reply timed out); without,
        it has no effect and finally answers 504."""
        self._add_fault(method, _Fault("timeout", count, delay=delay, deliver=deliver))

    # ---- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await _read_params(request)
        except _ApiError as error:
            return _error_response(error)
        entry = self._methods.get(method.lower())  # Telegram method names are case-insensitive
        name = entry[0] if entry else method
        self.calls.append((name, params))
        self.stats.requests += 1
        if request.match_info["token"] != self.token:
            return self._refuse(name, params, _ApiError(401, "Unauthorized"))
        if entry is None:
            return self._refuse(name, params, _ApiError(404, "Not Found"))
        handler = entry[1]
        if name == "getUpdates":  # long polls are not "activity" for wait_idle
            return await self._dispatch(name, handler, params)
        self._in_flight += 1
        self._last_activity = time.monotonic()
        try:
            return await self._dispatch(name, handler, params)
        finally:
            self._in_flight -= 1
            self._last_activity = time.monotonic()
            self._notify()

    async def _dispatch(
        self, name: str, handler: Callable[[Params], Any] | None, params: Params
    ) -> web.Response:
        fault = self._take_fault(name)
        if fault is None:
            return await self._process(name, handler, params)
        if fault.kind == "fail":
            self.stats.injected_failures += 1
            return _error_response(
                _ApiError(fault.status, fault.description or "", fault.retry_after)
            )
        self.stats.injected_timeouts += 1
        response = await self._process(name, handler, params) if fault.deliver else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), fault.delay)
        return response or _error_response(_ApiError(504, "Gateway Timeout"))

    async def _process(
        self, name: str, handler: Callable[[Params], Any] | None, params: Params
    ) -> web.Response:
        try:
            result = await self._get_updates(params) if handler is None else handler(params)
        except _ApiError as error:
            return self._refuse(name, params, error)
        return _json_response({"ok": True, "result": result})

    def _refuse(self, method: str, params: Params, error: _ApiError) -> web.Response:
        if error.code == 429:
            self.stats.rejected_429 += 1
        elif error.code != 409:  # a superseded long poll is PTB's shutdown routine, not a bug
            self.stats.refused += 1
            self.refusals.append(Refusal(method, params, error.description))
        return _error_response(error)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error_response(_ApiError(401, "Unauthorized"))
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return _error_response(_ApiError(404, "Not Found"))
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # ---- updates -----------------------------------------------------------------------------

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise _ApiError(409, CONFLICT_WEBHOOK)
        offset = _int_param(params, "offset")
        limit = min(max(_int_param(params, "limit", default=100), 1), 100)
        timeout = _float_param(params, "timeout")
        self._confirm(offset)
        # A newer poll terminates an older one with 409, as Telegram does.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_polls()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            batch = self._take_batch(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing.is_set():
                return batch
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
            if generation != self._poll_generation:
                raise _ApiError(409, CONFLICT_OTHER_POLL)

    def _confirm(self, offset: int) -> None:
        pending = self._pending
        if offset > 0:
            while pending and pending[0]["update_id"] < offset:
                pending.popleft()
        elif offset < 0:
            while len(pending) > -offset:
                pending.popleft()

    def _take_batch(self, limit: int) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while self._redeliver and len(batch) < limit:
            batch.append(self._redeliver.popleft())
        fresh = list(itertools.islice(self._pending, limit - len(batch)))
        if fresh:
            self._delivered_max = max(self._delivered_max, fresh[-1]["update_id"])
        batch.extend(fresh)
        if batch:
            if self._duplicate_next:
                self._duplicate_next = False
                self._redeliver.extend(batch)
            self._last_activity = time.monotonic()
            self._notify()  # wait_idle() must see that the queue was drained
        return batch

    def _has_undelivered(self) -> bool:
        return bool(self._redeliver) or bool(
            self._pending and self._pending[-1]["update_id"] > self._delivered_max
        )

    def _enqueue(self, update: dict[str, Any]) -> int:
        update_id = update.get("update_id")
        if update_id is None:
            update_id = update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, update_id + 1)
        self._pending.append(update)
        self._history[update_id] = update
        if len(self._history) > self.UPDATE_HISTORY:
            self._history.popitem(last=False)
        self._last_activity = time.monotonic()
        self._wake_polls()
        return update_id

    def _user_message(self, user_id: int, content: dict[str, Any]) -> int:
        chat = self._ensure_chat(user_id)  # a user writing to the bot creates the chat
        message_id = chat.next_message_id()
        chat.user_message_ids.add(message_id)
        message = {
            "message_id": message_id,
            "from": chat.user_dict,
            "chat": chat.chat_dict,
            "date": int(time.time()),
            **content,
        }
        return self._enqueue({"message": message})

    # ---- waiting -----------------------------------------------------------------------------

    def _wake_polls(self) -> None:
        event, self._updates_event = self._updates_event, asyncio.Event()
        event.set()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_changed(self, timeout: float) -> None:
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def _wait(
        self, ready: Callable[[], T | None], timeout: float, what: Callable[[], str], chat_id: int
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = ready()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing.is_set():
                chat = self._chats.get(chat_id)
                seen = [
                    m.text if m.kind == "text" else f"<{m.kind}>"
                    for m in (chat.bot_messages if chat else [])
                ]
                unread = seen[chat.cursor :] if chat else []
                raise TimeoutError(
                    f"no {what()} after {timeout}s; unread: {unread!r}; "
                    f"latest refusals: {self.refusals[-3:]!r}"
                )
            await self._wait_changed(remaining)

    # ---- helpers -----------------------------------------------------------------------------

    def _chat_of(self, user_id: int) -> _Chat:
        chat = self._chats.get(user_id)
        if chat is None:
            raise KeyError(f"no user {user_id}; call add_user first")
        return chat

    def _ensure_chat(self, user_id: int) -> _Chat:
        chat = self._chats.get(user_id)
        if chat is None:
            self.add_user(user_id)
            chat = self._chats[user_id]
        return chat

    def _add_fault(self, method: str, fault: _Fault) -> None:
        if fault.remaining > 0:
            self._faults.setdefault(method.lower(), deque()).append(fault)

    def _take_fault(self, name: str) -> _Fault | None:
        if not self._faults:  # the common case stays one dict test
            return None
        queue = self._faults.get(name.lower())
        if not queue and name != "getUpdates":
            queue = self._faults.get("*")
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault

    def _store_file(
        self, data: bytes, file_name: str | None, mime_type: str | None, folder: str
    ) -> _StoredFile:
        number = next(self._ids)
        suffix = f".{file_name.rsplit('.', 1)[-1]}" if file_name and "." in file_name else ""
        stored = _StoredFile(
            file_id=f"STANDIN-FILE-{number}",
            file_unique_id=f"U{number}",
            file_path=f"{folder}/file_{number}{suffix}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _target_chat(
        self, params: Params, *, flood: bool = False, check_blocked: bool = True
    ) -> _Chat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        try:
            chat = self._chats.get(int(raw))
        except (TypeError, ValueError):
            chat = None  # "@username" of a private chat: Telegram cannot resolve it either
        if chat is None:
            raise _ApiError(400, CHAT_NOT_FOUND)
        if check_blocked and chat.blocked:
            raise _ApiError(403, BLOCKED)
        if flood:
            self._check_flood(chat)
        return chat

    def _check_flood(self, chat: _Chat) -> None:
        now = time.monotonic()
        if self._per_chat_limit:
            if chat.bucket is None:
                chat.bucket = _TokenBucket(1.0, self.PER_CHAT_BURST)
            wait = chat.bucket.take(now)
            if wait:
                raise self._flood_error(wait)
        if self._bucket is not None:
            wait = self._bucket.take(now)
            if wait:
                if chat.bucket is not None:
                    chat.bucket.refund()
                raise self._flood_error(wait)

    @staticmethod
    def _flood_error(wait: float) -> _ApiError:
        retry_after = max(1, math.ceil(wait))
        return _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def _formatted(
        self,
        params: Params,
        key: str,
        entities_key: str,
        *,
        limit: int,
        too_long: str,
        required: bool,
    ) -> tuple[str | None, str | None, list[dict[str, Any]]]:
        """Validate a text or caption; returns (plain, raw, entities)."""
        raw = _str_param(params, key)
        if raw is None:
            if required:
                raise _ApiError(400, TEXT_EMPTY)
            return None, None, []
        parse_mode = (_str_param(params, "parse_mode") or "").lower()
        if parse_mode == "html":
            try:
                plain, entities = parse_telegram_html(raw, strict_ampersand=self._strict_ampersand)
            except EntityParseError as error:
                raise _bad(f"can't parse entities: {error}") from None
        elif parse_mode in ("markdown", "markdownv2"):
            raise _bad("can't parse entities: the stand-in implements only parse_mode HTML")
        elif parse_mode:
            raise _bad("unsupported parse_mode")
        else:
            plain = raw
            entities = _json_param(params, entities_key, "can't parse entities JSON object") or []
            if not isinstance(entities, list) or not all(
                isinstance(e, dict)
                and isinstance(e.get("offset"), int)
                and isinstance(e.get("length"), int)
                for e in entities
            ):
                raise _bad("can't parse entities JSON object")
        plain, entities = _strip_text(plain, entities)
        if not plain:
            if required:
                raise _ApiError(400, TEXT_EMPTY)
            return None, raw, []
        if utf16_len(plain) > limit:
            raise _ApiError(400, too_long)
        return plain, raw, entities

    def _reply_markup(self, params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        markup = _json_param(
            params, "reply_markup", "can't parse reply keyboard markup JSON object"
        )
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _validate_inline_keyboard(markup["inline_keyboard"])
            return markup
        if inline_only:
            raise _bad("inline keyboard expected")
        if "keyboard" in markup:
            _validate_reply_keyboard(markup["keyboard"])
        elif not (markup.get("remove_keyboard") is True or markup.get("force_reply") is True):
            raise _bad("can't parse reply keyboard markup JSON object")
        return markup

    def _message_dict(self, message: BotMessage) -> dict[str, Any]:
        """The Bot API Message object for a bot message, as it is now."""
        chat = self._chats[message.chat_id]
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "from": self._bot_sender,
            "chat": chat.chat_dict,
            "date": message.date,
        }
        if message.edit_date is not None:
            result["edit_date"] = message.edit_date
        if message.kind == "text":
            result["text"] = message.text
            if message.entities:
                result["entities"] = message.entities
        else:
            stored = self._files[message.file_id] if message.file_id else None
            file_info: dict[str, Any] = {
                "file_id": message.file_id,
                "file_unique_id": stored.file_unique_id if stored else "",
                "file_size": len(stored.data) if stored else 0,
            }
            if message.kind == "photo":
                result["photo"] = [{**file_info, "width": 320, "height": 320}]
            else:
                result["document"] = {
                    **file_info,
                    **({"file_name": message.file_name} if message.file_name else {}),
                    **({"mime_type": message.mime_type} if message.mime_type else {}),
                }
            if message.caption:
                result["caption"] = message.caption
                if message.entities:
                    result["caption_entities"] = message.entities
        # Telegram echoes only inline keyboards in the returned Message.
        inline = _inline_markup(message.reply_markup)
        if inline is not None:
            result["reply_markup"] = inline
        return result

    def _record(self, chat: _Chat, message: BotMessage) -> dict[str, Any]:
        chat.bot_messages.append(message)
        chat.by_id[message.message_id] = message
        self.stats.sent_ok += 1
        return self._message_dict(message)

    def _editable(self, params: Params) -> tuple[_Chat, BotMessage]:
        if params.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")  # the stand-in has no inline mode
        chat = self._target_chat(params, flood=True)
        message_id = _int_param(params, "message_id", missing="message identifier is not specified")
        message = chat.by_id.get(message_id)
        if message is None or message.deleted:
            if message_id in chat.user_message_ids:
                raise _bad("message can't be edited")
            raise _ApiError(400, EDIT_NOT_FOUND)
        return chat, message

    # ---- method handlers ---------------------------------------------------------------------

    def _get_me(self, params: Params) -> dict[str, Any]:
        return self.bot_user

    def _delete_webhook(self, params: Params) -> bool:
        self.webhook_url = ""
        if _bool_param(params, "drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, params: Params) -> bool:
        url = _str_param(params, "url") or ""
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook_url = url
        if _bool_param(params, "drop_pending_updates"):
            self._pending.clear()
        return True

    def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    def _command_key(self, params: Params) -> tuple[str, str]:
        scope = _json_param(params, "scope", "can't parse BotCommandScope JSON object")
        language = _str_param(params, "language_code") or ""
        if not _LANGUAGE_RE.fullmatch(language):
            raise _bad("invalid language code specified")
        if scope is None:
            return "default", language
        if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
            raise _bad("can't parse BotCommandScope JSON object")
        kind = scope["type"]
        if kind not in _COMMAND_SCOPES:
            raise _bad("wrong BotCommandScope type specified")
        parts = [kind, *(str(scope[k]) for k in ("chat_id", "user_id") if k in scope)]
        return ":".join(parts), language

    def _set_my_commands(self, params: Params) -> bool:
        commands = _json_param(params, "commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _ApiError(400, TOO_MANY_COMMANDS)
        clean = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.fullmatch(name):
                raise _ApiError(400, COMMAND_INVALID)
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _ApiError(400, COMMAND_DESCRIPTION_INVALID)
            clean.append({"command": name, "description": description})
        key = self._command_key(params)
        if clean:
            self._commands[key] = clean
        else:  # an empty list is how Telegram clients "delete" a menu
            self._commands.pop(key, None)
        return True

    def _get_my_commands(self, params: Params) -> list[dict[str, str]]:
        return self._commands.get(self._command_key(params), [])

    def _delete_my_commands(self, params: Params) -> bool:
        self._commands.pop(self._command_key(params), None)
        return True

    def _menu_chat(self, params: Params) -> int | None:
        if params.get("chat_id") in (None, ""):
            return None  # the default button of every private chat
        return int(self._target_chat(params).user.user_id)

    def _set_chat_menu_button(self, params: Params) -> bool:
        chat_id = self._menu_chat(params)
        button = _json_param(params, "menu_button", "can't parse menu button JSON object")
        if button is None:
            button = {"type": "default"}
        if not isinstance(button, dict):
            raise _bad("can't parse menu button: MenuButton must be an Object")
        kind = button.get("type")
        if kind not in ("commands", "web_app", "default"):
            raise _bad("unsupported menu button type specified")
        if kind == "web_app":
            text, app = button.get("text"), button.get("web_app")
            if not isinstance(text, str) or not text.strip():
                raise _bad("menu button text is empty")
            url = app.get("url") if isinstance(app, dict) else None
            if not isinstance(url, str) or not url:
                raise _bad("can't parse menu button: Web App URL is empty")
            if not url.startswith("https://"):
                raise _bad(f"menu button Web App URL '{url}' is invalid: Only HTTPS links are allowed")
            button = {"type": "web_app", "text": text, "web_app": {"url": url}}
        if kind == "default":
            self._menu_buttons.pop(chat_id, None)
        else:
            self._menu_buttons[chat_id] = {"type": kind, **{k: v for k, v in button.items() if k != "type"}}
        return True

    def _get_chat_menu_button(self, params: Params) -> dict[str, Any]:
        return self.menu_button(self._menu_chat(params))

    def _send_message(self, params: Params) -> dict[str, Any]:
        chat = self._target_chat(params, flood=True)
        text, raw, entities = self._formatted(
            params, "text", "entities", limit=MAX_TEXT, too_long=TEXT_TOO_LONG, required=True
        )
        markup = self._reply_markup(params)
        date = int(time.time())
        message = BotMessage(
            message_id=chat.next_message_id(),
            chat_id=chat.user.user_id,
            date=date,
            original=Revision("sendMessage", text, raw, markup, date),
            text=text,
            html=raw,
            parse_mode=_str_param(params, "parse_mode"),
            entities=entities,
            reply_markup=markup,
        )
        return self._record(chat, message)

    def _send_media(self, params: Params, method: str, kind: str) -> dict[str, Any]:
        chat = self._target_chat(params, flood=True)
        caption, raw, entities = self._formatted(
            params,
            "caption",
            "caption_entities",
            limit=MAX_CAPTION,
            too_long=CAPTION_TOO_LONG,
            required=False,
        )
        markup = self._reply_markup(params)
        stored = self._input_file(params, kind)
        date = int(time.time())
        message = BotMessage(
            message_id=chat.next_message_id(),
            chat_id=chat.user.user_id,
            date=date,
            original=Revision(method, None, raw, markup, date),
            kind=kind,
            html=raw,
            parse_mode=_str_param(params, "parse_mode"),
            entities=entities,
            caption=caption,
            reply_markup=markup,
            file_name=stored.file_name,
            mime_type=stored.mime_type,
            file_id=stored.file_id,
        )
        if kind == "photo":
            message.photo = stored.data
        else:
            message.document = stored.data
        return self._record(chat, message)

    def _input_file(self, params: Params, key: str) -> _StoredFile:
        value = params.get(key)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if isinstance(value, Upload):
            if not value.data:
                raise _bad("file must be non-empty")
            if len(value.data) > MAX_DOCUMENT_BYTES:
                raise _ApiError(413, "Request Entity Too Large")
            folder = "photos" if key == "photo" else "documents"
            return self._store_file(value.data, value.filename, value.content_type, folder)
        if isinstance(value, str) and value:
            stored = self._files.get(value)
            if stored is not None:
                return stored
            if value.lower().startswith(("http://", "https://")):
                return self._store_file(b"", value.rsplit("/", 1)[-1] or None, None, "remote")
            raise _bad("wrong file identifier/HTTP URL specified")
        raise _bad(f"there is no {key} in the request")

    def _send_photo(self, params: Params) -> dict[str, Any]:
        return self._send_media(params, "sendPhoto", "photo")

    def _send_document(self, params: Params) -> dict[str, Any]:
        return self._send_media(params, "sendDocument", "document")

    def _get_file(self, params: Params) -> dict[str, Any]:
        stored = self._files.get(_str_param(params, "file_id") or "")
        if stored is None:
            raise _bad("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _apply_edit(self, message: BotMessage, method: str) -> dict[str, Any]:
        date = int(time.time())
        message.edit_date = date
        message.edits.append(
            Revision(method, message.text, message.html, message.reply_markup, date)
        )
        self.stats.edited_ok += 1
        return self._message_dict(message)

    def _edit_message_text(self, params: Params) -> dict[str, Any]:
        _chat, message = self._editable(params)
        if message.kind != "text":
            raise _bad("there is no text in the message to edit")
        text, raw, entities = self._formatted(
            params, "text", "entities", limit=MAX_TEXT, too_long=TEXT_TOO_LONG, required=True
        )
        # Omitting reply_markup removes an inline keyboard on Telegram, so None is the new markup.
        markup = self._reply_markup(params, inline_only=True)
        current = _inline_markup(message.reply_markup)
        if text == message.text and entities == message.entities and markup == current:
            raise _ApiError(400, NOT_MODIFIED)
        message.text, message.html, message.entities = text, raw, entities
        if markup is not None or current is not None:  # a reply keyboard stays on the client
            message.reply_markup = markup
        message.parse_mode = _str_param(params, "parse_mode")
        return self._apply_edit(message, "editMessageText")

    def _edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        _chat, message = self._editable(params)
        markup = self._reply_markup(params, inline_only=True)
        current = _inline_markup(message.reply_markup)
        if markup == current:
            raise _ApiError(400, NOT_MODIFIED)
        if markup is not None or current is not None:
            message.reply_markup = markup
        return self._apply_edit(message, "editMessageReplyMarkup")

    def _delete_message(self, params: Params) -> bool:
        chat = self._target_chat(params, check_blocked=False)
        message_id = _int_param(params, "message_id", missing="message identifier is not specified")
        message = chat.by_id.get(message_id)
        if message is not None and not message.deleted:
            message.deleted = True
            return True
        if message_id in chat.user_message_ids:
            chat.user_message_ids.discard(message_id)
            return True
        raise _ApiError(400, DELETE_NOT_FOUND)

    def _answer_callback_query(self, params: Params) -> bool:
        query_id = _str_param(params, "callback_query_id") or ""
        if query_id not in self._open_queries:
            raise _ApiError(400, QUERY_TOO_OLD)
        text = _str_param(params, "text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            raise _ApiError(400, CALLBACK_ANSWER_TOO_LONG)
        self._open_queries.discard(query_id)
        self.callback_answers.append(
            CallbackAnswer(query_id, text, _bool_param(params, "show_alert"))
        )
        return True

    def _send_chat_action(self, params: Params) -> bool:
        self._target_chat(params)
        if _str_param(params, "action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True


def _inline_markup(markup: dict[str, Any] | None) -> dict[str, Any] | None:
    """The markup if it is an inline keyboard (the only kind attached to a message), else None."""
    return markup if markup is not None and "inline_keyboard" in markup else None


def _validate_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    total = 0
    for row in rows:
        for button in row:
            total += 1
            if not isinstance(button, dict):
                raise _bad(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            text = button.get("text")
            if not isinstance(text, str):
                raise _bad(
                    'can\'t parse inline keyboard button: Field "text" must be of type String'
                )
            if not text.strip():
                raise _bad("BUTTON_TEXT_INVALID")
            actions = [key for key in _INLINE_BUTTON_ACTIONS if key in button]
            if not actions:
                raise _bad(
                    "can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            if len(actions) > 1:
                raise _bad(
                    f"can't parse inline keyboard button: exactly one of {actions} must be used"
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if (
                    not isinstance(data, str)
                    or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise _ApiError(400, BUTTON_DATA_INVALID)
            if "url" in button:
                url = button["url"]
                if not isinstance(url, str) or not _URL_RE.fullmatch(url):
                    raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    if total > MAX_INLINE_BUTTONS:
        raise _ApiError(400, TOO_MANY_BUTTONS)


def _validate_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            if isinstance(button, str):
                text = button
            elif isinstance(button, dict):
                text = button.get("text")
                if sum(1 for key in _REPLY_BUTTON_REQUESTS if button.get(key)) > 1:
                    raise _bad(
                        "can't parse keyboard button: only one of the request fields can be used"
                    )
            else:
                raise _bad(
                    "can't parse keyboard button: KeyboardButton must be a String or an Object"
                )
            if not isinstance(text, str) or not text.strip():
                raise _bad('can\'t parse keyboard button: Field "text" must be of type String')
