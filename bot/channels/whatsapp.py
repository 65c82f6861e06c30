"""The WhatsApp channel over the Cloud API: a signed webhook in, Graph API messages out.

In: Meta POSTs batches of messages to ``/whatsapp`` with ``X-Hub-Signature-256: sha256=<HMAC-
SHA256(app secret, raw body)>``; a request without the right signature is refused with 403
before its body is parsed. Each message becomes an ``Inbound`` for the dispatcher, its WhatsApp
message id serving as the update id, so a message Meta delivers twice is handled once. The
request is answered after the replies went out: every answer is committed before its reply, so
if the process dies mid-way Meta delivers again and the repeat is recognised. A GET with
``hub.mode=subscribe`` and the right ``hub.verify_token`` echoes ``hub.challenge`` (Meta's
subscription handshake).

Out, within WhatsApp's limits (the core knows none of them):

- up to 3 choices whose labels fit in 20 characters → reply buttons;
- up to 10 choices → a list message (row titles of 24 characters; a longer label continues in
  the row's description);
- more (the 36 states) → the list in pages of 9, the 10th row "More…" naming what comes next.
  The page number and a digest of the question's choice ids travel in that row's id, so paging
  keeps no state: on a tap the channel asks the engine for the user's current question and
  shows its next page if the digest still matches (else the tap is on an old question).
- the phone question → a reply button carrying the number the sender wrote from (when WhatsApp
  gave it), besides typing it;
- chat HTML → WhatsApp formatting (``*bold*``, ``_italic_``, entities decoded); texts over 4096
  characters are split; an interactive body over 1024 characters sends its head as text first.

WhatsApp cannot edit a sent message: ``Picked`` sends nothing (the tapped option already shows
as the user's reply), ``Toast`` becomes a short text, a multi-select redrawn with ticks comes as
a new list.

The 24-hour window: every message a user sends is reported to the hub's ``windows`` (the window
opens; what was held for the chat goes out). Outside the window the delivery worker hands the
sender a ``TemplateSend`` (``send_template``: an approved template with its body parameters and a
quick-reply payload). A tap on that button comes back as a ``button`` message: the payload of a
``choice`` template is the message's own button (``go:…``, handled as any tap); that of an
``open`` template (``wa.open``) needs nothing more when the held message is on its way, and
otherwise resumes the conversation as ``/start`` does.

Who: a user is known by their business-scoped user id (``from_user_id``, or the ``user_id`` of
their contact), which WhatsApp sends whether or not a username hides their number; a message
without one (an older API version) is known by its ``from`` number, and an admin always by the
number in ``WHATSAPP_ADMIN_NUMBERS``. A user first known by their number moves to their
business-scoped id when it first arrives; a ``system`` message saying the number or the id
changed moves them to the new one (bot/storage/identities.py), progress, lead and all. Messages
to a business-scoped id go as ``recipient``, to a number as ``to``. The number a user writes
from is kept in memory only (``Phones``), for the "share my number" button.

Statuses: the ``statuses`` of a webhook (sent, delivered, read, failed with ``errors``) are
reported to ``windows`` by message id (wamid), each on its own; an unknown id is tried once more
a few seconds later (a status can overtake the sender storing the id), then ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web

from ..core import payloads
from ..core.messages import Choice, InboxItem, Inbound, InKind, Photo, Say, Toast, UserKey
from ..core.session import N_
from ..core.templates import OPEN_PAYLOAD, TemplateSend
from ..services.conversation import Reply
from ..services.delivery import Blocked, Refused, RetryLater, TemplateRefused, WindowClosed
from ..services.window import DeliveryStatus
from ..services.dispatch import Who
from ..services.hub import Hub
from .render import plain, split_text

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
DEFAULT_BASE_URL = "https://graph.facebook.com/v21.0"
WEBHOOK_PATH = "/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_WEBHOOK_BYTES = 1 << 20

# Limits from the Cloud API reference.
TEXT_MAX = 4096
BODY_MAX = 1024  # body of an interactive message
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_ROWS_MAX = 10
LIST_BUTTON_MAX = 20
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
PAGE_SIZE = LIST_ROWS_MAX - 1  # a page of a long list keeps its last row for "More…"

CHOOSE = N_("Choose")
MORE = N_("More…")
MORE_BODY = N_("More choices: {first}–{last} of {total}")
TRY_AGAIN = N_("Sorry, I could not save that just now. Please send it again in a minute.")
EARLIER = N_("That button is from an earlier message. Please use the latest one.")
INBOX_SWEEP = 5.0  # several workers: seconds between looks for stored messages nobody is handling
INBOX_STALE = 10.0  # ... stored this long ago (a worker died holding them, or the one that holds them quit)
REPLY_GRACE = 5.0  # seconds the webhook's answer waits for a turn's replies to go out (they go on after it)
VERIFY_GUESSES = 5  # wrong verify tokens one address may send in VERIFY_WINDOW before it gets 429
VERIFY_WINDOW = 60.0
VERIFY_ADDRESSES = 10_000  # addresses remembered at most (the oldest are forgotten first)

# Button ids the channel answers itself; the engine's payloads look like "12:value" or "go:…".
OWN_NUMBER_ID = payloads.OwnNumber().encode()

# The prefilled text of a wa.me staff invite link (https://wa.me/<number>?text=join_<code>): Telegram's /start join_<code>.
_JOIN = re.compile(r"join_[a-z0-9]{1,40}")
LONG_LISTS_USERS = 2000  # users whose last long lists are remembered for "More…" (the oldest are forgotten first)
LONG_LISTS_EACH = 3  # long lists remembered per user

# Message types that need no answer: a reaction, a change of the user's number, a chat opened.
_SILENT = {"reaction", "system", "request_welcome", "ephemeral"}

# A business-scoped user id (BSUID): a country code, a dot, up to 128 letters and digits
# ("IN.1648738043044942"; a parent id has ".ENT." in the middle). Never a phone number.
_BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
# The system messages that say a user's identifier changed (the second is the older name).
_NUMBER_CHANGED = {"user_changed_number", "customer_changed_number"}
_ID_CHANGED = "user_changed_user_id"
_OWNER_PAYLOADS = (payloads.Step, payloads.Module)  # the owner conversation's own buttons
PHONES_KEPT = 5000  # users whose number is kept in memory for the "share my number" button
IDS_CHECKED = 5000  # business-scoped ids remembered as already checked for an older number key


class Arrival(NamedTuple):
    """One user message of a webhook, with who sent it."""

    ref: str  # the id the user is known by (``users.user_ref``): business-scoped id, else number
    message_id: str
    message: dict[str, Any]
    phone: str | None  # the number it came from, when WhatsApp says
    bsuid: str | None


def is_bsuid(ref: str) -> bool:
    """Whether ``ref`` is a business-scoped user id (sent as ``recipient``, not ``to``)."""
    return _BSUID.fullmatch(ref) is not None


def _phone(value: Any) -> str | None:
    """A wa_id (the phone number, digits only) from a webhook field, or ``None``."""
    digits = str(value or "").lstrip("+")
    return digits if digits.isdigit() and 7 <= len(digits) <= 15 else None


def _bsuid(value: Any) -> str | None:
    return str(value) if value and is_bsuid(str(value)) else None


def sender_ids(message: dict[str, Any], contacts: Sequence[Any] = ()) -> tuple[str | None, str | None]:
    """``(phone number, business-scoped id)`` of a message's sender; either may be missing.

    The phone is ``from`` (absent for a user whose username hides it); the business-scoped id is
    ``from_user_id``, else the ``user_id`` of the contact with that wa_id (or of the only contact).
    """
    phone, bsuid = _phone(message.get("from")), _bsuid(message.get("from_user_id"))
    if bsuid is None and is_bsuid(str(message.get("from") or "")):
        bsuid = str(message["from"])
    if bsuid is None:
        people = [c for c in contacts if isinstance(c, dict)]
        mine = [c for c in people if phone and _phone(c.get("wa_id")) == phone] or (people if len(people) == 1 else [])
        if mine:
            bsuid = _bsuid(mine[0].get("user_id"))
    return phone, bsuid


class Phones:
    """The phone number each recent sender wrote from, in memory only (never stored, never logged).

    Users are keyed by their business-scoped id, so their number is known only from their own
    messages; the phone question offers it as a button ("📱 +91 98765 43210") to whoever just
    wrote. Bounded; forgotten at a restart until the user writes again.
    """

    def __init__(self, size: int = PHONES_KEPT):
        self.size = size
        self._phones: OrderedDict[str, str] = OrderedDict()

    def remember(self, ref: str, phone: str | None) -> None:
        """``ref`` wrote from ``phone``."""
        if not phone or phone == ref:
            return
        self._phones.pop(ref, None)
        self._phones[ref] = phone
        while len(self._phones) > self.size:
            self._phones.popitem(last=False)

    def of(self, ref: str) -> str | None:
        """The number of ``ref``: the ref itself when it is one, else the one it last wrote from."""
        return ref if _phone(ref) == ref else self._phones.get(ref)

    def forget(self, ref: str) -> None:
        """Drop what is known of ``ref`` (its data was erased)."""
        self._phones.pop(ref, None)


# ----------------------------------------------------------------- formatting
_PAIR = re.compile(r"<(b|i)>(.*?)</\1>", re.S)
_TAG = re.compile(r"</?(?:b|i)>")
_MARK = {"b": "*", "i": "_"}


# WhatsApp formats *bold*, _italic_, ~strike~ and `code` itself, with no way to escape a marker. Chat
# HTML formats only with tags, so a marked run in the text is someone's typing (a business called
# "*Best* Exports"): its markers become look-alikes that WhatsApp leaves alone, and it shows as typed.
_LOOKALIKE = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_FORMATTED = {
    marker: re.compile(rf"(?<!\w){re.escape(marker)}(?=[^\s{re.escape(marker)}])[^\n]*?(?<=\S){re.escape(marker)}(?!\w)")
    for marker in _LOOKALIKE
}


def neutralise_markers(text: str) -> str:
    """``text`` with every run WhatsApp would format shown literally (its markers as look-alikes).

    A marker that would not format (``/delete_my_data``, ``2 * 3``, a lone ``_``) is left as it is.
    """
    for marker, pattern in _FORMATTED.items():
        if marker not in text:
            continue
        look = _LOOKALIKE[marker]
        for _ in range(8):  # ```code``` and nested runs: again until nothing formats
            changed = pattern.sub(lambda m: look + m.group(0)[1:-1] + look, text)
            if changed == text:
                break
            text = changed
    if "```" in text:
        text = text.replace("`", _LOOKALIKE["`"])
    return text


def to_whatsapp(text: str) -> str:
    """Chat HTML as WhatsApp text: <b> → *bold*, <i> → _italic_, entities decoded.

    WhatsApp only formats a marked run that starts and ends on a non-space within one line, so
    markers go around the trimmed text of each line. Markers already in the text (typed by
    someone) are neutralised first, so only the tags format.
    """
    text = neutralise_markers(text)

    def mark(match: re.Match) -> str:
        sign = _MARK[match.group(1)]
        return "\n".join(_wrap(line, sign) for line in match.group(2).split("\n"))

    previous = None
    while previous != text:  # nested tags: outer pair first, then the inner one
        previous, text = text, _PAIR.sub(mark, text)
    return html.unescape(_TAG.sub("", text))


def _wrap(line: str, sign: str) -> str:
    core = line.strip()
    if not core:
        return line
    start = line.index(core)
    return f"{line[:start]}{sign}{core}{sign}{line[start + len(core):]}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _names(labels: Sequence[str], limit: int) -> str:
    """As many whole labels as fit in ``limit``, comma-separated, "…" when some are left out."""
    shown = ""
    for index, label in enumerate(labels):
        candidate = f"{shown}, {label}" if shown else label
        rest = index < len(labels) - 1
        if len(candidate) + rest > limit:
            return shown + "…" if shown else _cut(label, limit)
        shown = candidate
    return shown


def digest(choices: Sequence[Choice]) -> str:
    """A short fingerprint of a question's choice ids (stable across restarts)."""
    return hashlib.sha1("\n".join(c.id for c in choices).encode()).hexdigest()[:10]


def own_number_label(wa_id: str) -> str:
    """The button that shares the sender's own number: "📱 +91 98765 43210"."""
    if len(wa_id) == 12 and wa_id.startswith("91"):
        return f"📱 +91 {wa_id[2:7]} {wa_id[7:]}"
    return _cut(f"📱 +{wa_id}", BUTTON_TITLE_MAX)


def page_bounds(total: int, page: int) -> tuple[int, int, bool] | None:
    """``(start, end, more)`` of ``page`` of a list of ``total`` rows; ``None`` past the end."""
    if total <= LIST_ROWS_MAX:
        return (0, total, False) if page == 0 else None
    start = page * PAGE_SIZE
    if page < 0 or start >= total:
        return None
    if total - start <= LIST_ROWS_MAX:
        return start, total, False
    return start, start + PAGE_SIZE, True


def text_message(text: str) -> dict[str, Any]:
    """A Graph API text message."""
    return {"type": "text", "text": {"body": text, "preview_url": False}}


def template_message(template: TemplateSend) -> dict[str, Any]:
    """A Graph API template message: the approved template, its body parameters, its quick-reply payload."""
    components: list[dict[str, Any]] = []
    if template.params:
        components.append({"type": "body", "parameters": [{"type": "text", "text": p} for p in template.params]})
    components.append({"type": "button", "sub_type": "quick_reply", "index": "0",
                       "parameters": [{"type": "payload", "payload": template.payload}]})
    return {"type": "template", "template": {"name": template.name, "language": {"policy": "deterministic", "code": template.code},
                                             "components": components}}


class Renderer:
    """Turns the core's ``Say`` into Graph API message objects, in one language.

    ``lang=None`` (outbox messages, whose language the sender is not told) words the channel's
    own labels in Hindi and English together.
    """

    def __init__(self, texts, lang: str | None):
        self.texts, self.lang = texts, lang

    def _(self, msgid: str, **values: object) -> str:
        if self.texts is None:
            return msgid.format(**values) if values else msgid
        langs = [self.lang] if self.lang else ["hi", "en"]
        words = []
        for lang in langs:
            text = self.texts.gettext(lang, msgid)
            if values:
                text = text.format(**{k: self.texts.number(lang, v) if isinstance(v, int) else v for k, v in values.items()})
            words.append(text)
        words = list(dict.fromkeys(words))
        return (" / " if max(map(len, words)) <= ROW_TITLE_MAX else "\n").join(words)

    def messages(self, say: Say, *, page: int = 0, wa_id: str | None = None) -> list[dict[str, Any]]:
        """The messages that show ``say`` (``page`` of a long list); the last carries the choices."""
        text = to_whatsapp(say.text).strip() or "…"
        choices = [c for c in say.choices if 0 < len(c.id) <= ROW_ID_MAX]
        if len(choices) < len(say.choices):
            log.error("choice ids too long for WhatsApp, dropped: %r", [c.id for c in say.choices if c not in choices])
        if not choices:
            if say.ask_contact and wa_id:
                button = {"type": "reply", "reply": {"id": OWN_NUMBER_ID, "title": own_number_label(wa_id)}}
                return self._with_body(text, {"type": "button", "action": {"buttons": [button]}})
            return [text_message(piece) for piece in split_text(text, TEXT_MAX)]
        labels = [plain(c.label).strip() or "…" for c in choices]
        if (
            len(choices) <= BUTTONS_MAX
            and all(len(label) <= BUTTON_TITLE_MAX for label in labels)
            and len(set(labels)) == len(labels)  # WhatsApp wants distinct button titles
        ):
            buttons = [{"type": "reply", "reply": {"id": c.id, "title": label}} for c, label in zip(choices, labels)]
            return self._with_body(text, {"type": "button", "action": {"buttons": buttons}})
        bounds = page_bounds(len(choices), page)
        if bounds is None:
            return []
        start, end, more = bounds
        rows = [self._row(c.id, label) for c, label in zip(choices[start:end], labels[start:end])]
        if more:
            rows.append({"id": payloads.MorePage(page + 1, digest(choices)).encode(), "title": _cut(self._(MORE), ROW_TITLE_MAX),
                         "description": _names(labels[end:], ROW_DESCRIPTION_MAX)})
        listing = {"type": "list", "action": {"button": _cut(self._(CHOOSE), LIST_BUTTON_MAX), "sections": [{"rows": rows}]}}
        if page > 0:  # a later page: a short heading instead of the whole question again
            text = self._(MORE_BODY, first=start + 1, last=end, total=len(choices))
        return self._with_body(text, listing)

    @staticmethod
    def _row(row_id: str, label: str) -> dict[str, str]:
        row = {"id": row_id, "title": _cut(label, ROW_TITLE_MAX)}
        if len(label) > ROW_TITLE_MAX:
            row["description"] = _cut(label, ROW_DESCRIPTION_MAX)
        return row

    @staticmethod
    def _with_body(text: str, interactive: dict[str, Any]) -> list[dict[str, Any]]:
        """``interactive`` with ``text`` as its body; a head that does not fit goes first as text."""
        head: list[dict[str, Any]] = []
        if len(text) > BODY_MAX:
            pieces = split_text(text, BODY_MAX)
            text = pieces[-1]
            head = [text_message(piece) for piece in split_text("\n".join(pieces[:-1]), TEXT_MAX)]
        return [*head, {"type": "interactive", "interactive": {**interactive, "body": {"text": text}}}]


class LongLists:
    """The last long lists (more than 10 choices) of other roles sent to each user, by digest, in memory.

    "More…" finds the owner conversation's question by itself; a long list of another role is
    found here: the admins' /broadcast wizard (the 36 states), a startup's ``/leads`` page (five
    leads, paging and six filters). A row tapped on an old screen is that role's to refuse (its
    buttons say which screen or page they belong to). Bounded; after a restart such a tap is
    answered as a button from an earlier message, and the user sends the screen's command again.
    """

    def __init__(self, users: int = LONG_LISTS_USERS, each: int = LONG_LISTS_EACH):
        self.users, self.each = users, each
        self._lists: OrderedDict[str, OrderedDict[str, tuple[Say, str | None]]] = OrderedDict()

    def remember(self, wa_id: str, say: Say, lang: str | None) -> None:
        """Keep ``say`` if it is another role's screen shown as a paged list (the owner conversation's
        questions and module menu are found by the conversation, which also knows when they were answered)."""
        if len(say.choices) <= LIST_ROWS_MAX or all(isinstance(payloads.decode(c.id), _OWNER_PAYLOADS) for c in say.choices):
            return
        mine = self._lists.pop(wa_id, None) or OrderedDict()
        key = digest(say.choices)
        mine.pop(key, None)
        mine[key] = (say, lang)
        while len(mine) > self.each:
            mine.popitem(last=False)
        self._lists[wa_id] = mine
        while len(self._lists) > self.users:
            self._lists.popitem(last=False)

    def find(self, wa_id: str, want: str) -> tuple[Say, str | None] | None:
        """The list with digest ``want`` last sent to ``wa_id``, and its language."""
        return (self._lists.get(wa_id) or {}).get(want)


# ----------------------------------------------------------------- the Graph API
class GraphError(Exception):
    """The Graph API (or the network) refused a request; ``status`` 0 for no HTTP answer."""

    def __init__(self, status: int, code: int | None, message: str, retry_after: float | None = None):
        super().__init__(f"HTTP {status}, code {code}: {message}" if status else message)
        self.status, self.code, self.retry_after = status, code, retry_after


class GraphClient:
    """The Cloud API calls the bot makes, over one aiohttp session (opened on first use)."""

    def __init__(self, token: str, phone_number_id: str, base_url: str = DEFAULT_BASE_URL, timeout: float = 15.0):
        self._token = token
        self.url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self.media_url = f"{base_url.rstrip('/')}/{phone_number_id}/media"
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never the token
        return f"GraphClient({self.url!r})"

    async def send(self, to: str, message: dict[str, Any]) -> str:
        """Send ``message`` to the WhatsApp user ``to``; returns its message id (wamid)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        address = {"recipient": to} if is_bsuid(to) else {"to": to}  # a business-scoped id goes as "recipient"
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **address, **message}
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.post(self.url, json=body, headers=headers) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status == 200 and isinstance(data, dict) and data.get("messages"):
                    return str(data["messages"][0].get("id", ""))
                error = data.get("error", {}) if isinstance(data, dict) else {}
                details = (error.get("error_data") or {}).get("details") or error.get("message") or response.reason
                retry = response.headers.get("Retry-After", "")
                raise GraphError(response.status, error.get("code"), str(details), float(retry) if retry.isdigit() else None)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(0, None, f"network: {type(exc).__name__}") from exc

    async def mark_read(self, message_id: str, *, typing: bool = True) -> None:
        """Mark the user's message ``message_id`` as read (blue ticks) and, with ``typing``, show the
        typing indicator until the bot's answer arrives (WhatsApp clears it then, or after 25 s)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        try:
            async with self._session.post(self.url, json=body, headers={"Authorization": f"Bearer {self._token}"}) as response:
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status == 200 and isinstance(data, dict) and data.get("success"):
                    return
                error = data.get("error", {}) if isinstance(data, dict) else {}
                raise GraphError(response.status, error.get("code"), str(error.get("message") or response.reason))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(0, None, f"network: {type(exc).__name__}") from exc

    async def upload(self, data: bytes, mime: str = "image/png", filename: str = "image.png") -> str:
        """Upload a picture to WhatsApp's media store; returns its media id (kept there 30 days)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        form = aiohttp.FormData()
        form.add_field("messaging_product", "whatsapp")
        form.add_field("type", mime)
        form.add_field("file", data, filename=filename, content_type=mime)
        try:
            async with self._session.post(self.media_url, data=form, headers={"Authorization": f"Bearer {self._token}"}) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if response.status == 200 and isinstance(body, dict) and body.get("id"):
                    return str(body["id"])
                error = body.get("error", {}) if isinstance(body, dict) else {}
                details = (error.get("error_data") or {}).get("details") or error.get("message") or response.reason
                raise GraphError(response.status, error.get("code"), str(details))
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GraphError(0, None, f"network: {type(exc).__name__}") from exc

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()


THROTTLED = {4: 60.0, 80007: 60.0, 130429: 1.0, 131048: 60.0}  # code → seconds to pause all sending
PAIR_RATE_LIMIT = 131056  # too many messages to this one user: wait before the next
TEMPORARY = {1, 2, 131000, 131016}
UNDELIVERABLE = 131026  # not on WhatsApp, old app, or the user blocked the business
OUTSIDE_WINDOW = 131047  # more than 24 hours since the user last wrote: only templates may go
TEMPLATE_ERRORS = {132000, 132001, 132005, 132007, 132012, 132015, 132016}  # not approved, paused, parameters wrong
AUTH = {0, 3, 10, 190, *range(200, 300)}


CAPTION_MAX = 1024  # an image message's caption


async def picture_message(client: GraphClient, photo: Photo) -> dict[str, Any]:
    """An image message for ``photo`` (a certificate, a chart, a diagram): uploaded first, then sent by id."""
    mime = "image/jpeg" if photo.filename.lower().endswith((".jpg", ".jpeg")) else "image/png"
    media_id = await client.upload(photo.data, mime, photo.filename)
    image: dict[str, Any] = {"id": media_id}
    if photo.caption:
        image["caption"] = to_whatsapp(photo.caption)[:CAPTION_MAX]
    return {"type": "image", "image": image}


def outcome(exc: GraphError) -> Exception:
    """The delivery worker's name for a Graph API failure (``RetryLater``, ``Blocked``, ``Refused``)."""
    if exc.status == 429 or exc.code in THROTTLED:
        return RetryLater(str(exc), exc.retry_after or THROTTLED.get(exc.code or 0, 1.0), flood=True)
    if exc.code == PAIR_RATE_LIMIT:
        return RetryLater(str(exc), exc.retry_after or 6.0)
    if exc.status == 0 or exc.status >= 500 or exc.code in TEMPORARY:
        return RetryLater(str(exc))
    if exc.code == UNDELIVERABLE:
        return Blocked(str(exc))
    if exc.code == OUTSIDE_WINDOW:
        return WindowClosed(str(exc))
    if exc.code in TEMPLATE_ERRORS:
        return TemplateRefused(str(exc))
    if exc.status == 401 or exc.code in AUTH:  # a token to renew: keep the messages meanwhile
        log.error("WhatsApp refused the access token: %s", exc)
        return RetryLater(str(exc), 300.0)
    return Refused(str(exc))  # malformed …


class WhatsAppSender:
    """Sends outbox messages through the Graph API, mapping its errors to the worker's outcomes."""

    def __init__(self, client: GraphClient, texts=None, *, lists: LongLists | None = None, phones: Phones | None = None):
        self.client = client
        self.renderer = Renderer(texts, None)
        self.lists = lists  # shared with the channel: "More…" of a long list this sender sent
        self.phones = phones if phones is not None else Phones(0)  # shared with the channel: who wrote from which number

    async def send(self, chat_ref: str, say: Say) -> str | None:
        """Send ``say`` to the WhatsApp user ``chat_ref``; returns the last message id.

        A text too long for one message goes out in pieces; if a later piece has to be retried,
        the earlier ones go again with it (outbox messages are short, so this stays theoretical).
        """
        if self.lists is not None:
            self.lists.remember(chat_ref, say, None)
        ref = None
        for message in self.renderer.messages(say):
            try:
                ref = await self.client.send(chat_ref, message)
            except GraphError as exc:
                raise outcome(exc) from exc
        return ref

    async def send_template(self, chat_ref: str, template: TemplateSend) -> str | None:
        """Send an approved template to ``chat_ref`` (outside the 24-hour window); returns its message id."""
        try:
            return await self.client.send(chat_ref, template_message(template))
        except GraphError as exc:
            raise outcome(exc) from exc

    async def reply(self, row) -> str | None:
        """Send one stored reply of a conversation turn, in the user's language."""
        output = row.output
        renderer = Renderer(self.renderer.texts, row.lang or None)
        if isinstance(output, Say):
            if self.lists is not None:
                self.lists.remember(row.chat_ref, output, row.lang or None)
            messages = renderer.messages(output, wa_id=self.phones.of(row.chat_ref))
        elif isinstance(output, Toast):
            messages = [text_message(to_whatsapp(output.text))]
        elif isinstance(output, Photo):
            try:
                messages = [await picture_message(self.client, output)]
            except GraphError as exc:
                raise outcome(exc) from exc
        else:  # Picked: the option the user tapped already shows in the chat as their reply
            return None
        ref = None
        for message in messages:
            try:
                ref = await self.client.send(row.chat_ref, message)
            except GraphError as exc:
                raise outcome(exc) from exc
        return ref


# ----------------------------------------------------------------- the webhook
def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is ``sha256=`` + the HMAC-SHA256 of ``body`` under the app secret."""
    if not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[7:].strip().lower(), expected)


def to_inbound(message: dict[str, Any]) -> Inbound | None:
    """The platform-neutral form of one webhook message; ``None`` for those needing no answer."""
    kind = message.get("type")
    if kind == "text":
        return Inbound.say(str((message.get("text") or {}).get("body", "")))
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        picked = interactive.get("button_reply") or interactive.get("list_reply") or {}
        return Inbound.tap(str(picked["id"])) if picked.get("id") else None
    if kind == "button":  # a quick-reply button of a template message
        payload = (message.get("button") or {}).get("payload")
        return Inbound.tap(str(payload)) if payload else None
    if kind == "contacts":
        # A contact card is taken as the sender's number only if it is the sender's own (WhatsApp
        # says whose number sent the message); anyone else's card is refused, its number not kept.
        sender = re.sub(r"\D", "", str(message.get("from") or ""))
        cards = False
        for contact in message.get("contacts") or []:
            for phone in (contact.get("phones") if isinstance(contact, dict) else None) or []:
                if not isinstance(phone, dict):
                    continue
                number = phone.get("phone") or phone.get("wa_id")
                if not number:
                    continue
                cards = True
                wa_id, digits = re.sub(r"\D", "", str(phone.get("wa_id") or "")), re.sub(r"\D", "", str(number))
                if sender and (wa_id == sender or (len(digits) >= 10 and sender.endswith(digits))):
                    return Inbound.contact(str(number))
        return Inbound.foreign_contact() if cards else Inbound.media("contacts")
    if kind in _SILENT:
        return None
    return Inbound.media(str(kind or "other"))


def to_status(entry: Any) -> DeliveryStatus | None:
    """One ``statuses`` entry of a webhook; ``None`` for a shape that is not one."""
    if not isinstance(entry, dict) or not entry.get("id") or entry.get("status") not in ("sent", "delivered", "read", "failed"):
        return None
    try:
        at = int(entry.get("timestamp") or 0)
    except (TypeError, ValueError):
        at = 0
    code, title = None, ""
    for error in entry.get("errors") or []:
        if isinstance(error, dict):
            try:
                code = int(error.get("code"))
            except (TypeError, ValueError):
                code = None
            title = str(error.get("title") or error.get("message") or "")[:200]
            break
    return DeliveryStatus(str(entry["id"]), str(entry["status"]), at, code, title)


async def _health(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def _sent_order(item: InboxItem) -> int:
    """A stored message's place in its user's queue: WhatsApp's timestamp (seconds; ties go as stored)."""
    try:
        return int(json.loads(item.payload)["message"].get("timestamp") or 0)
    except (ValueError, TypeError, KeyError, AttributeError):
        return 0


class WhatsAppChannel:
    """Receives the webhook, hands each message to the dispatcher, renders the replies."""

    def __init__(self, hub: Hub, client: GraphClient, *, app_secret: str, verify_token: str, phone_number_id: str = "",
                 lists: LongLists | None = None, phones: Phones | None = None, identities=None,
                 admin_numbers: frozenset[str] = frozenset()):
        self.hub = hub
        self.client = client
        self.lists = lists if lists is not None else LongLists()  # long lists of other roles, for "More…"
        self.phones = phones if phones is not None else Phones()
        self.identities = identities  # bot.storage.identities.SqliteIdentities: a user's id changed
        self.admin_numbers = admin_numbers  # WHATSAPP_ADMIN_NUMBERS: admins are known by their number
        self._upgraded: OrderedDict[str, None] = OrderedDict()  # business-scoped ids already checked for an older number key
        self.inbox = hub.inbox
        self.replies = hub.replies
        self.windows = getattr(hub, "windows", None)
        self._marking: set[asyncio.Task] = set()  # read marks on their way (kept referenced until done)
        self._secret = app_secret
        self._verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.clock: Callable[[], float] = time.monotonic  # for the verify throttle
        self._wrong: dict[str, deque[float]] = {}  # address → times of its recent wrong verify tokens
        # Several workers on one database (PostgreSQL): bot.storage.pg.UserLocks, one queue per user (``drain``)
        self.locks: Any = None
        self._draining: set[str] = set()  # users whose queue this process is draining now
        self._again: set[str] = set()  # ... and for whom a message came in meanwhile
        self._sweeper: asyncio.Task | None = None

    def web_app(self, path: str = WEBHOOK_PATH, extra=None) -> web.Application:
        """The aiohttp app: GET ``path`` (verification), POST ``path`` (messages), GET /health, and what
        ``extra(app)`` adds to the same server (the dashboard)."""
        application = web.Application(client_max_size=MAX_WEBHOOK_BYTES)
        application.router.add_get(path, self.verify)
        application.router.add_post(path, self.receive)
        application.router.add_get("/health", _health)
        if extra is not None:
            extra(application)
        return application

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription handshake: echo the challenge if the verify token is ours.

        Guessing is throttled: after ``VERIFY_GUESSES`` wrong tokens from one address within
        ``VERIFY_WINDOW`` seconds it gets 429 (right token or not) until its guesses age out. One
        warning is logged per burst of wrong guesses, not one per guess.
        """
        now, address = self.clock(), request.remote or "?"
        wrong = self._recent_wrong(address, now)
        if len(wrong) >= VERIFY_GUESSES:
            wrong.append(now)  # still guessing: still throttled (the deque keeps only the last few)
            retry = max(1, int(wrong[0] + VERIFY_WINDOW - now + 1))
            return web.Response(status=429, headers={"Retry-After": str(retry)})
        query = request.query
        token = query.get("hub.verify_token", "")
        if (
            query.get("hub.mode") == "subscribe"
            and self._verify_token
            and hmac.compare_digest(token.encode(), self._verify_token.encode())
        ):
            self._wrong.pop(address, None)
            return web.Response(text=query.get("hub.challenge", ""))
        if not wrong:
            log.warning("webhook verification refused: wrong mode or verify token (from %s); more from this address "
                        "within %.0f s are not logged, and after %d it gets 429", address, VERIFY_WINDOW, VERIFY_GUESSES)
        wrong.append(now)
        return web.Response(status=403)

    def _recent_wrong(self, address: str, now: float) -> deque[float]:
        """The times of ``address``'s wrong verify tokens within the window (a new, stored list if none)."""
        wrong = self._wrong.get(address)
        if wrong is None:
            if len(self._wrong) >= VERIFY_ADDRESSES:  # a flood of addresses: forget the oldest
                for stale in list(self._wrong)[: VERIFY_ADDRESSES // 10]:
                    del self._wrong[stale]
            wrong = self._wrong[address] = deque(maxlen=VERIFY_GUESSES)
        while wrong and wrong[0] <= now - VERIFY_WINDOW:
            wrong.popleft()
        return wrong

    async def receive(self, request: web.Request) -> web.Response:
        """A signed batch of messages and statuses.

        Every message in it is stored before anything else (503 if it cannot be: Meta delivers
        the batch again), then each is handled on its own: one that cannot be parsed or handled
        is logged and skipped, and the others are answered. The 200 goes once every turn is
        committed; replies get a moment to go out before it, and the reply queue owns them after.
        The senders' windows open as soon as their messages are stored; statuses are applied
        after the messages, each on its own (one that cannot be applied costs the others nothing).
        """
        if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
            return web.Response(status=413)
        body = await request.read()
        if not signature_ok(self._secret, body, request.headers.get(SIGNATURE_HEADER, "")):
            log.warning("webhook request refused: wrong or missing signature (from %s)", request.remote)
            return web.Response(status=403)
        try:
            data = json.loads(body)
            arrivals = self.arrivals(data)
            statuses = self.raw_statuses(data)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            log.warning("webhook request refused: not a WhatsApp notification (%s)", type(exc).__name__)
            return web.Response(status=400)
        try:  # before anything is stored under the new id: a changed id takes the user's record with it
            await self.follow_changes(arrivals)
        except Exception as exc:  # noqa: BLE001 - not moved: Meta must deliver it again
            log.error("WhatsApp user ids not updated (%s); asking Meta to deliver the messages again", type(exc).__name__)
            return web.Response(status=503)
        # a system message (an id changed) was acted on above and needs no answer; it is no sign of the user writing
        raw = [(a.ref, a.message_id, a.message) for a in arrivals if a.message.get("type") != "system"]
        for arrival in arrivals:
            self.phones.remember(arrival.ref, arrival.phone)
        items = [InboxItem(message_id, json.dumps({"from": ref, "message": message}, ensure_ascii=False), ref)
                 for ref, message_id, message in raw]
        if self.inbox is not None and items:
            try:
                await self.inbox.put(CHANNEL, items, int(time.time()))
            except Exception as exc:  # noqa: BLE001 - not stored: Meta must deliver it again
                log.error("WhatsApp messages not stored (%s); asking Meta to deliver them again", type(exc).__name__)
                return web.Response(status=503)
        if self.windows is not None and raw:
            try:  # the users wrote: their windows open, and what was held for them goes out
                await self.windows.inbound(CHANNEL, {wa_id for wa_id, _, _ in raw})
            except Exception as exc:  # noqa: BLE001 - the messages are stored: answering them matters more
                log.warning("WhatsApp window not recorded (%s)", type(exc).__name__)
        if self.locks is None:
            for item in items:
                await self.handle_stored(item)
        else:
            for ref in dict.fromkeys(item.chat_ref for item in items):
                await self.drain(ref)
        if self.windows is not None and statuses:
            try:
                await self.windows.statuses(CHANNEL, statuses)
            except Exception as exc:  # noqa: BLE001 - statuses only inform; Meta need not send them again
                log.warning("WhatsApp statuses not stored (%s)", type(exc).__name__)
        if self.replies is not None:
            await self.replies.idle({wa_id for wa_id, _, _ in raw}, CHANNEL, timeout=REPLY_GRACE)
        return web.Response(status=200)

    async def handle_stored(self, item: InboxItem) -> None:
        """Handle one stored message, whatever is wrong with it; then it may leave the inbox."""
        try:
            data = json.loads(item.payload)
            ref, message = str(data["from"]), data["message"]
            inbound = to_inbound(message)
            if inbound is not None:
                conversations = self.hub.conversations
                if not await conversations.store.seen(CHANNEL, item.update_id, int(conversations.clock.now())):  # a repeat: no "typing…"
                    self._mark_read(item.update_id)
                await self.handle(ref, item.update_id, inbound, phone=_phone(message.get("from")))
        except Exception:  # noqa: BLE001 - one bad message must not cost the others their answers
            log.exception("a WhatsApp message could not be handled; skipped")
        finally:
            if self.inbox is not None:
                self.inbox.done(CHANNEL, item.update_id)

    async def drain(self, ref: str) -> None:
        """Several workers: handle ``ref``'s stored messages one at a time, in the order they were sent.

        Meta does not order its deliveries, and the load balancer may give one user's messages to
        different workers. Whichever worker holds the user's lock (``self.locks``) handles them all,
        oldest first by WhatsApp's timestamp (then as stored), deleting each row as it is handled; a
        worker that finds the lock taken has stored its message and leaves it to the holder. The
        holder looks once more after letting go, so a message stored meanwhile is never left behind:
        either the holder sees it, or its worker's try comes after the lock was let go and takes it.
        A worker that dies holding a lock loses it with its connection; the rows it held are then
        stale, and ``sweep`` (every worker, every INBOX_SWEEP seconds) hands them to a live one.
        """
        if ref in self._draining:  # this process is at it: its loop looks again before it stops
            self._again.add(ref)
            return
        self._draining.add(ref)
        name = f"whatsapp-user:{ref}"
        try:
            while True:
                self._again.discard(ref)
                if not await self.locks.try_lock(name):
                    return  # another worker holds this user's queue: it will find the message stored
                try:
                    while items := await self.inbox.of_chat(CHANNEL, ref):
                        item = min(items, key=_sent_order)
                        await self.handle_stored(item)
                        await self.inbox.remove(CHANNEL, item.update_id)
                finally:
                    await self.locks.unlock(name)
                if ref not in self._again and not await self.inbox.of_chat(CHANNEL, ref):
                    return
        except Exception as exc:  # noqa: BLE001 - the rows stay stored: the sweep hands them out again
            log.warning("a WhatsApp user's stored messages were left for the sweep (%s)", type(exc).__name__)
        finally:
            self._draining.discard(ref)

    async def sweep(self) -> int:
        """Several workers: drain the users whose messages were stored INBOX_STALE seconds ago and are
        still there (their worker died, or quit before it got to them); how many users were looked at."""
        refs = await self.inbox.stale_chats(CHANNEL, int(time.time() - INBOX_STALE))
        for ref in refs:
            await self.drain(ref)
        return len(refs)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(INBOX_SWEEP)
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - tried again at the next sweep
                log.warning("WhatsApp inbox sweep failed (%s)", type(exc).__name__)

    async def close(self) -> None:
        """Stop the sweep and let go of the user locks (several workers)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self.locks is not None:
            await self.locks.close()

    def _mark_read(self, message_id: str) -> None:
        """Blue ticks and the typing indicator while the turn runs: in the background, never in its way."""
        async def mark() -> None:
            try:
                await self.client.mark_read(message_id)
            except GraphError as exc:  # only a courtesy: the answer matters, not the ticks
                log.debug("could not mark a WhatsApp message read: %s", exc)

        task = asyncio.create_task(mark(), name="whatsapp-mark-read")
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def replay(self) -> int:
        """At start-up: handle the messages a crash left stored and unhandled, in order."""
        if self.inbox is None:
            return 0
        pending = await self.inbox.pending(CHANNEL)
        if self.locks is not None:  # other workers may be handling some of these right now
            for ref in dict.fromkeys(item.chat_ref for item in pending):
                await self.drain(ref)
            return len(pending)
        for item in pending:
            await self.handle_stored(item)
        if pending:
            log.warning("handled %d WhatsApp message(s) stored before the last stop", len(pending))
        return len(pending)

    def _values(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The ``value`` of each ``messages`` change for our phone number."""
        values = []
        for entry in data.get("entry") or []:
            for change in entry.get("changes") or []:
                if not isinstance(change, dict) or change.get("field") != "messages":
                    continue
                value = change.get("value") or {}
                number = (value.get("metadata") or {}).get("phone_number_id")
                if self.phone_number_id and number and str(number) != self.phone_number_id:
                    log.warning("webhook for another phone number id ignored")
                    continue
                values.append(value)
        return values

    def raw_statuses(self, data: dict[str, Any]) -> list[DeliveryStatus]:
        """The delivery statuses in a notification (entries of an unknown shape are left out)."""
        found = []
        for value in self._values(data):
            for entry in value.get("statuses") or []:
                status = to_status(entry)
                if status is None:
                    continue
                if status.status == "failed":
                    log.info("WhatsApp could not deliver message %s: %s", status.message_ref, status.code)
                found.append(status)
        return found

    def ref_for(self, phone: str | None, bsuid: str | None) -> str | None:
        """The id a sender is known by: the business-scoped id, else the number (an admin's is
        always the number: ``WHATSAPP_ADMIN_NUMBERS`` names them)."""
        if phone and phone in self.admin_numbers:
            return phone
        return bsuid or phone

    def arrivals(self, data: dict[str, Any]) -> list[Arrival]:
        """Each user message in a notification, with its sender's ids (a message naming no sender is dropped)."""
        found, nameless = [], 0
        for value in self._values(data):
            contacts = value.get("contacts") or []
            for message in value.get("messages") or []:
                if not isinstance(message, dict) or not message.get("id"):
                    continue
                phone, bsuid = sender_ids(message, contacts if isinstance(contacts, list) else [])
                ref = self.ref_for(phone, bsuid)
                if ref is None:
                    nameless += 1
                    continue
                found.append(Arrival(ref, str(message["id"]), message, phone, bsuid))
        if nameless:
            log.warning("%d WhatsApp message(s) without a sender id skipped", nameless)
        return found

    async def follow_changes(self, arrivals: Sequence[Arrival]) -> None:
        """Move users whose id changed to their new id, before their messages are stored.

        A user known by their number who now arrives with a business-scoped id is moved to it
        (checked once per id and process); a ``system`` message saying the number or the
        business-scoped id changed moves the user to the new one.
        """
        if self.identities is None:
            return
        for arrival in arrivals:
            message = arrival.message
            if message.get("type") == "system":
                system = message.get("system") or {}
                kind = system.get("type") if isinstance(system, dict) else None
                if kind in _NUMBER_CHANGED or kind == _ID_CHANGED:
                    phone = _phone(system.get("wa_id") or system.get("new_wa_id")) if kind in _NUMBER_CHANGED else arrival.phone
                    new = self.ref_for(phone, _bsuid(system.get("user_id") or system.get("new_user_id")))
                    if new and new != arrival.ref:
                        moved = await self.identities.move(CHANNEL, arrival.ref, new)
                        log.info("a WhatsApp user's id changed (%s): %s", kind, moved)
                continue
            if arrival.ref == arrival.bsuid and arrival.phone and arrival.bsuid not in self._upgraded:
                await self.identities.move(CHANNEL, arrival.phone, arrival.bsuid)  # "nothing" unless known by number
                self._upgraded[arrival.bsuid] = None
                while len(self._upgraded) > IDS_CHECKED:
                    self._upgraded.popitem(last=False)

    async def handle(self, wa_id: str, message_id: str, inbound: Inbound, *, phone: str | None = None) -> None:
        """One user message from ``wa_id`` (the sender's id; ``phone`` the number it came from, if
        WhatsApp gave it): to the dispatcher, then the replies back."""
        key = UserKey(CHANNEL, wa_id)
        tapped = payloads.decode(inbound.data) if inbound.kind is InKind.CHOICE else None
        if isinstance(tapped, payloads.MorePage):
            await self.more(wa_id, tapped)
            return
        phone = phone or _phone(wa_id)
        if inbound.kind is InKind.CHOICE and inbound.data == OWN_NUMBER_ID and phone:
            inbound = Inbound.contact("+" + phone)  # the number comes from WhatsApp, not from the tap
        if inbound.kind is InKind.TEXT and _JOIN.fullmatch(inbound.text.strip()):
            # A staff invite's wa.me link prefills "join_<code>": the same as Telegram's /start join_<code>.
            inbound = Inbound(InKind.COMMAND, text=inbound.text.strip(), data="start")
        if inbound.kind is InKind.CHOICE and inbound.data == OPEN_PAYLOAD:  # an "open" template's button
            if self.windows is not None and await self.windows.waiting(CHANNEL, wa_id):
                return  # the held message is on its way: the tap opened the window
            inbound = Inbound(InKind.COMMAND, data="start")  # nothing waits: back where they were
        try:
            reply = await self.hub.dispatcher.handle(Who(key, lang_hint=None, update_id=message_id), inbound)
        except Exception:  # noqa: BLE001 - the user must hear back whatever went wrong
            log.exception("could not handle a WhatsApp message; the user was asked to try again")
            await self._send(wa_id, [text_message(Renderer(self.hub.texts, None)._(TRY_AGAIN))])
            return
        if reply is not None and any(e.kind == "delete_my_data" for e in reply.events):
            self.phones.forget(wa_id)  # erased: not even the memory of their number stays
        if reply is not None and not reply.queued:  # None: a message delivered again; queued: on its way
            await self.render(wa_id, reply)

    async def render(self, wa_id: str, reply: Reply) -> None:
        """Send ``reply``'s outputs in order."""
        renderer = Renderer(self.hub.texts, reply.lang)
        messages: list[dict[str, Any]] = []
        for output in reply.outputs:
            if isinstance(output, Say):
                self.lists.remember(wa_id, output, reply.lang)
                messages += renderer.messages(output, wa_id=self.phones.of(wa_id))
            elif isinstance(output, Toast):
                messages.append(text_message(to_whatsapp(output.text)))
            elif isinstance(output, Photo) and output.data:  # a named picture is drawn only on the outbox road
                messages.append(await picture_message(self.client, output))
            # Picked: the option the user tapped already shows in the chat as their reply.
        await self._send(wa_id, messages)

    async def more(self, wa_id: str, tapped: payloads.MorePage) -> None:
        """The next page of a long list, if that list is still the user's current question.

        Read-only: nothing changes and nothing is kept between pages.
        """
        page, want = tapped.page, tapped.digest  # the codec refused "²" or a 20-digit page
        found = self.lists.find(wa_id, want)  # a long list of another role (an admin's screen, a /leads page)
        if found is not None:
            question, lang = found
        else:  # the owner conversation's question, if it still is
            outputs, lang = await self.hub.conversations.current_question(UserKey(CHANNEL, wa_id))
            question = next((o for o in outputs if isinstance(o, Say) and o.choices and digest(o.choices) == want), None)
        renderer = Renderer(self.hub.texts, lang)
        messages = renderer.messages(question, page=int(page)) if question is not None else []
        await self._send(wa_id, messages or [text_message(renderer._(EARLIER))])

    async def _send(self, wa_id: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            try:
                await self.client.send(wa_id, message)
            except GraphError as exc:  # later messages would make no sense without this one
                log.warning("reply to a WhatsApp user not sent: %s", exc)
                return

    async def start(self, listen: str, port: int, path: str = WEBHOOK_PATH, extra=None) -> web.AppRunner:
        """Serve the webhook on ``listen:port`` (with ``extra``'s routes); ``cleanup()`` the returned runner to stop."""
        await self.replay()
        if self.locks is not None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="whatsapp-inbox-sweep")
        runner = web.AppRunner(self.web_app(path, extra))
        await runner.setup()
        await web.TCPSite(runner, listen, port).start()
        log.info("Export Saathi is running on WhatsApp (webhook on %s:%d%s)", listen, port, path)
        return runner
