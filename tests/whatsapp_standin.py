"""A local stand-in for the WhatsApp Cloud API and the phones that talk to the bot, for tests.

`WhatsAppStandin` is an aiohttp server on 127.0.0.1 serving the Graph API's
``POST /v21.0/{phone_number_id}/messages`` closely enough that the bot's ``GraphClient`` runs
against it unchanged (``base_url=api.base_url``). It records every message the bot sends and
refuses what WhatsApp refuses, with a Graph API error body (code 131009 and the reason in
``error_data.details``): a wrong token (401, code 190), a text over 4096 characters, an
interactive body over 1024, more than 3 reply buttons, a button title over 20 characters,
repeated button ids or titles, a list with more than 10 rows, a row title over 24 characters
or a description over 72, a list button label over 20, repeated row ids, a section title over
24 (or missing when there are several sections).

It also plays the users: ``send_text``, ``tap``, ``send_contact``, ``send_media`` POST a
notification to ``webhook_url`` the way Meta does (``entry[].changes[].value.messages[]``,
signed with ``X-Hub-Signature-256``) and return the HTTP status the bot answered. The bot
answers after its replies went out, so when a call returns, the replies are recorded.

Usage::

    async with WhatsAppStandin() as api:
        client = GraphClient(api.token, api.phone_number_id, api.base_url)
        ...serve the bot's webhook app; api.webhook_url = "http://127.0.0.1:<port>/whatsapp"
        await api.send_text("919876543210", "hi")
        [question] = api.new_messages("919876543210")   # what the bot sent since the last look
        await api.tap("919876543210", question, "English")  # a reply button or list row, by title
        assert api.refusals == []

Faults: ``fail_next(count, status=..., code=..., retry_after=...)`` answers the next sends with
a Graph API error instead of delivering them.

The 24-hour window, as Meta enforces it: a message that is not a template, to a user whose last
message the stand-in delivered to the webhook is 24 hours old or more by ``clock`` (settable; a
test gives it its manual clock), or who never wrote, is refused with code 131047. A template
is refused with 132001 unless its name (and language, when given) is in ``approved``, which the
test configures (``{name: {language code: body}}``, or a set of names); a parameter with a line
break, a tab or more than four spaces in a row with 132018. ``window_open(wa_id)`` lets a test
say a user wrote without posting anything; ``enforce_window = False`` turns the rule off.

Identity, as since Meta's usernames: ``bsuids`` maps a user's number to their business-scoped
user id (``give_bsuid``); their messages then carry ``from_user_id`` and the contact's
``user_id`` beside ``from``. A user addressed by a business-scoped id alone (``"IN.…"``) has a
username hiding their number: their messages have no ``from`` and no ``wa_id``. A send names its
user with ``to`` (a number) or ``recipient`` (a business-scoped id); anything else is refused,
``to`` holding a business-scoped id included. One person is one window and one message list,
whichever of their ids a send or a test uses. ``change_number(old, new)`` posts the ``system``
message Meta sends when a user moved to a new number (and, with ``new_bsuid``, a new id).

Read marks: ``{"status": "read", "message_id": …}`` (with ``typing_indicator``) is taken for a
message id the stand-in delivered to the webhook and recorded in ``read_marks``; any other is
refused (code 100). It is not a message: no window applies.

Statuses: ``send_status(sent, "delivered")`` (or "read", or "failed" with ``code``) POSTs a
``statuses`` notification for a message the bot sent, as Meta does; ``post_statuses`` several
at once. ``before_answer(sent)``, when set, runs after a send is accepted and before the bot gets
its answer (a status that overtakes its message id). ``tap_template(wa_id, sent)`` taps a template's quick-reply button (a ``button``
message carrying its payload).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

TEXT_MAX = 4096
BODY_MAX = 1024
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
ROWS_MAX = 10
SECTIONS_MAX = 10
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
LIST_BUTTON_MAX = 20
SECTION_TITLE_MAX = 24
FOOTER_MAX = 60
CAPTION_MAX = 1024
MEDIA_TYPES = {"image/jpeg": 5 * 1024 * 1024, "image/png": 5 * 1024 * 1024}  # what an image message takes, and its size limit
WINDOW = 24 * 3600
OUTSIDE_WINDOW = 131047
TEMPLATE_MISSING = 132001
PARAM_FORMAT = 132018
PAYLOAD_MAX = 256


@dataclass
class Sent:
    """A message the bot sent, as WhatsApp accepted it."""

    id: str
    to: str
    body: dict[str, Any]

    rendered: str = ""  # a template's body with its parameters, when the stand-in knows the approved text

    @property
    def kind(self) -> str:
        """"text", "button" (reply buttons), "list", "image" or "template"."""
        return self.body["interactive"]["type"] if self.body["type"] == "interactive" else self.body["type"]

    @property
    def template(self) -> dict[str, Any]:
        """A template message's ``template`` object."""
        return self.body["template"]

    @property
    def template_name(self) -> str:
        return self.template["name"]

    @property
    def template_lang(self) -> str:
        return self.template["language"]["code"]

    @property
    def template_params(self) -> list[str]:
        """The body parameters of a template message, in order."""
        return [p["text"] for c in self.template.get("components", []) if c.get("type") == "body" for p in c.get("parameters", [])]

    @property
    def payload(self) -> str:
        """The payload of a template message's first quick-reply button."""
        [button] = [c for c in self.template.get("components", []) if c.get("type") == "button" and str(c.get("index")) == "0"]
        return button["parameters"][0]["payload"]

    @property
    def text(self) -> str:
        """The text the user reads (a text message's body or an interactive message's body)."""
        if self.body["type"] == "text":
            return self.body["text"]["body"]
        if self.body["type"] == "interactive":
            return self.body["interactive"]["body"]["text"]
        if self.body["type"] == "image":
            return self.body["image"].get("caption", "")
        return self.rendered

    @property
    def options(self) -> list[dict[str, str]]:
        """The reply buttons or list rows, each ``{"id", "title"[, "description"]}``."""
        if self.body["type"] != "interactive":
            return []
        action = self.body["interactive"]["action"]
        if "buttons" in action:
            return [dict(b["reply"]) for b in action["buttons"]]
        return [dict(row) for section in action["sections"] for row in section["rows"]]

    @property
    def titles(self) -> list[str]:
        """The titles of the buttons or rows, in order."""
        return [o["title"] for o in self.options]

    @property
    def list_button(self) -> str | None:
        """The label of the button that opens a list."""
        return self.body["interactive"]["action"].get("button") if self.kind == "list" else None

    def option(self, label: str) -> dict[str, str]:
        """The button or row titled ``label`` (or whose description is ``label``, for cut titles)."""
        for option in self.options:
            if label in (option["title"], option.get("description")):
                return option
        raise LookupError(f"no option {label!r} in {self.titles}")


@dataclass
class Fault:
    status: int
    code: int
    message: str
    retry_after: float | None = None


@dataclass
class WhatsAppStandin:
    """The Graph API stand-in and the users' phones (see the module docstring)."""

    token: str = "standin-access-token"
    app_secret: str = "standin-app-secret"
    phone_number_id: str = "106540352242922"
    display_number: str = "15550783881"
    webhook_url: str = ""
    sent: list[Sent] = field(default_factory=list)
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # uploaded: id -> (mime, bytes)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (to, why)
    requests: int = 0
    clock: Callable[[], float] = time.time  # the window's clock
    enforce_window: bool = True
    approved: dict[str, dict[str, str]] | set[str] = field(default_factory=dict)  # approved templates
    last_inbound: dict[str, float] = field(default_factory=dict)  # wa_id -> when their last message was delivered
    status_posts: list[int] = field(default_factory=list)  # HTTP statuses the webhook answered to status notifications
    bsuids: dict[str, str] = field(default_factory=dict)  # number -> business-scoped user id
    before_answer: Callable[[Sent], Awaitable[None]] | None = None  # runs after a send is accepted, before it is answered
    read_marks: list[tuple[str, bool]] = field(default_factory=list)  # (message id, with the typing indicator)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []
        self._cursor: dict[str, int] = {}
        self._inbound_ids: set[str] = set()  # message ids posted to the webhook: what a read mark may name
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> WhatsAppStandin:
        app = web.Application()
        app.router.add_post("/v21.0/{number}/messages", self._messages)
        app.router.add_post("/v21.0/{number}/media", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v21.0"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ----------------------------------------------------------------- the Graph API
    def fail_next(self, count: int = 1, *, status: int = 400, code: int = 131000, message: str = "Something went wrong",
                  retry_after: float | None = None) -> None:
        """Answer the next ``count`` sends with this Graph API error."""
        self._faults += [Fault(status, code, message, retry_after)] * count

    async def _messages(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, 190, "Error validating access token", "")
        if request.match_info["number"] != self.phone_number_id:
            return self._error(400, 100, "Unsupported post request", "")
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, 100, "Invalid JSON", "")
        if isinstance(body, dict) and body.get("status") == "read":  # mark as read (+ typing indicator): not a message
            return self._read_mark(body)
        to = str(body.get("to") or body.get("recipient") or "")  # "to" wins when both are given, as on Meta
        why = check(body)
        if why is None and body.get("type") == "image" and (body.get("image") or {}).get("id") not in self.media:
            why = "image.id is not an uploaded media id"
        if why is not None:
            self.refusals.append((to, why))
            return self._error(400, 131009, "(#131009) Parameter value is not valid", why)
        rendered = ""
        if body.get("type") == "template":
            refused = self._template_refusal(body["template"])
            if refused is not None:
                code, why = refused
                self.refusals.append((to, why))
                return self._error(400 if code == PARAM_FORMAT else 404, code, f"(#{code}) {why}", why)
            rendered = self._render(body["template"])
        elif self.enforce_window and not self.window_is_open(self.person(to)):
            why = "Re-engagement message: more than 24 hours have passed since the recipient last replied"
            self.refusals.append((to, why))
            return self._error(400, OUTSIDE_WINDOW, f"(#{OUTSIDE_WINDOW}) {why}", why)
        if self._faults:
            fault = self._faults.pop(0)
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after else None
            return self._error(fault.status, fault.code, fault.message, fault.message, headers)
        message = Sent(f"wamid.out.{next(self._ids)}", to, body, rendered)
        self.sent.append(message)
        if self.before_answer is not None:  # e.g. a status that overtakes the send's own answer
            await self.before_answer(message)
        return web.json_response({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to} if to.isdigit() else {"input": to, "user_id": to}],
            "messages": [{"id": message.id}],
        })

    def _read_mark(self, body: dict[str, Any]) -> web.Response:
        """``{"status": "read", "message_id": …, "typing_indicator": {"type": "text"}}``, as Meta takes it."""
        why = None
        typing = body.get("typing_indicator")
        if body.get("messaging_product") != "whatsapp":
            why = "messaging_product must be whatsapp"
        elif body.get("message_id") not in self._inbound_ids:
            why = f"message_id {body.get('message_id')!r} is not a message this number received"
        elif typing is not None and typing != {"type": "text"}:
            why = "typing_indicator.type must be text"
        elif set(body) - {"messaging_product", "status", "message_id", "typing_indicator"}:
            why = f"unexpected fields {sorted(set(body) - {'messaging_product', 'status', 'message_id', 'typing_indicator'})}"
        if why is not None:
            self.refusals.append(("read", why))
            return self._error(400, 100, "(#100) Invalid parameter", why)
        self.read_marks.append((str(body["message_id"]), typing is not None))
        return web.json_response({"success": True})

    async def _upload(self, request: web.Request) -> web.Response:
        """POST /{phone-number-id}/media: multipart with messaging_product, type and file, as Meta takes it."""
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, 190, "Error validating access token", "")
        if request.match_info["number"] != self.phone_number_id:
            return self._error(400, 100, "Unsupported post request", "")
        if not request.content_type.startswith("multipart/form-data"):
            return self._error(400, 100, "Invalid parameter", "the upload must be multipart/form-data")
        form = await request.post()
        upload = form.get("file")
        mime = str(form.get("type", ""))
        why = None
        if form.get("messaging_product") != "whatsapp":
            why = "messaging_product must be whatsapp"
        elif not hasattr(upload, "file"):
            why = "file is required"
        elif mime not in MEDIA_TYPES:
            why = f"unsupported media type {mime!r}"
        if why is None:
            data = upload.file.read()
            if len(data) > MEDIA_TYPES[mime]:
                why = f"{len(data)} bytes; the limit for {mime} is {MEDIA_TYPES[mime]}"
            elif mime == "image/png" and not data.startswith(b"\x89PNG"):
                why = "the file is not a PNG image"
        if why is not None:
            self.refusals.append(("media", why))
            return self._error(400, 131053, "(#131053) Media upload error", why)
        media_id = str(4_000_000_000 + next(self._ids))
        self.media[media_id] = (mime, data)
        return web.json_response({"id": media_id})

    @staticmethod
    def _error(status: int, code: int, message: str, details: str, headers: dict[str, str] | None = None) -> web.Response:
        error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}
        if details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return web.json_response({"error": error}, status=status, headers=headers)

    def person(self, address: str) -> str:
        """One id per person: the business-scoped id of a number that has one, else the address."""
        return self.bsuids.get(address, address)

    def give_bsuid(self, phone: str, bsuid: str) -> None:
        """From now on ``phone``'s messages carry the business-scoped id ``bsuid``."""
        self.bsuids[phone] = bsuid
        if phone in self.last_inbound:
            self.last_inbound[bsuid] = self.last_inbound[phone]

    def window_is_open(self, wa_id: str) -> bool:
        """Whether ``wa_id`` wrote less than 24 hours ago (by ``clock``)."""
        last = self.last_inbound.get(self.person(wa_id))
        return last is not None and self.clock() - last < WINDOW

    def window_open(self, wa_id: str) -> None:
        """As if ``wa_id`` had just written."""
        self.last_inbound[self.person(wa_id)] = self.clock()

    def _approved(self) -> dict[str, dict[str, str]]:
        return {name: {} for name in self.approved} if isinstance(self.approved, set) else self.approved

    def _template_refusal(self, template: dict[str, Any]) -> tuple[int, str] | None:
        name, code = template.get("name"), (template.get("language") or {}).get("code")
        versions = self._approved().get(name)
        if versions is None:
            return TEMPLATE_MISSING, f"Template name {name!r} does not exist in the translation"
        if versions and code not in versions:
            return TEMPLATE_MISSING, f"Template {name!r} does not exist in {code!r}"
        params = [p.get("text", "") for c in template.get("components") or [] if c.get("type") == "body"
                  for p in c.get("parameters") or []]
        for text in params:
            if "\n" in text or "\t" in text or "     " in text:
                return PARAM_FORMAT, "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
        body = versions.get(code) if versions else None
        if body is not None and len(set(re.findall(r"\{\{(\d+)\}\}", body))) != len(params):
            return 132000, f"Number of parameters does not match the expected number of params ({len(params)})"
        return None

    def _render(self, template: dict[str, Any]) -> str:
        body = self._approved().get(template["name"], {}).get(template["language"]["code"], "")
        params = [p["text"] for c in template.get("components") or [] if c.get("type") == "body" for p in c.get("parameters") or []]
        return re.sub(r"\{\{(\d+)\}\}", lambda m: params[int(m.group(1)) - 1], body)

    # ----------------------------------------------------------------- observing
    def messages(self, wa_id: str) -> list[Sent]:
        """Everything sent to ``wa_id`` (by number or by business-scoped id)."""
        me = self.person(wa_id)
        return [m for m in self.sent if self.person(m.to) == me]

    def new_messages(self, wa_id: str) -> list[Sent]:
        """What was sent to ``wa_id`` since the previous ``new_messages`` for it."""
        mine = self.messages(wa_id)
        start = self._cursor.get(wa_id, 0)
        self._cursor[wa_id] = len(mine)
        return mine[start:]

    # ----------------------------------------------------------------- the users
    def sign(self, body: bytes, secret: str | None = None) -> str:
        """The ``X-Hub-Signature-256`` Meta would send for ``body``."""
        key = (self.app_secret if secret is None else secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def notification(self, wa_id: str, message: dict[str, Any], name: str = "Test User") -> dict[str, Any]:
        """A webhook notification carrying one user message from ``wa_id`` (a number, or the
        business-scoped id of a user whose username hides their number)."""
        bsuid = wa_id if not wa_id.isdigit() else self.bsuids.get(wa_id)
        sender: dict[str, Any] = {"from": wa_id} if wa_id.isdigit() else {}
        contact: dict[str, Any] = {"profile": {"name": name}}
        if wa_id.isdigit():
            contact["wa_id"] = wa_id
        if bsuid:
            sender["from_user_id"] = bsuid
            contact["user_id"] = bsuid
            if not wa_id.isdigit():
                contact["profile"]["username"] = "@" + name.lower().replace(" ", "")
        message = {**sender, "timestamp": str(int(time.time())), **message}
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": self.display_number, "phone_number_id": self.phone_number_id},
            "contacts": [contact],
            "messages": [message],
        }
        return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}

    async def post(self, payload: dict[str, Any] | bytes, *, signature: str | None = "auto") -> int:
        """POST ``payload`` to the bot's webhook, signed unless ``signature`` says otherwise."""
        assert self._session is not None and self.webhook_url, "set webhook_url first"
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            parsed = payload if isinstance(payload, dict) else json.loads(payload)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):  # the users who wrote: their windows open (Meta counts delivery to the webhook)
            for entry in parsed.get("entry") or []:
                for change in entry.get("changes") or []:
                    for message in (change.get("value") or {}).get("messages") or []:
                        if isinstance(message, dict) and message.get("id"):
                            self._inbound_ids.add(str(message["id"]))
                        if not isinstance(message, dict) or message.get("type") == "system":
                            continue
                        who = message.get("from_user_id") or message.get("from")
                        if who:
                            self.last_inbound[self.person(str(who))] = self.clock()
        headers = {"Content-Type": "application/json"}
        if signature == "auto":
            signature = self.sign(body)
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self._session.post(self.webhook_url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    def _message_id(self, given: str | None) -> str:
        return given or f"wamid.in.{next(self._ids)}"

    async def send_text(self, wa_id: str, text: str, *, message_id: str | None = None, signature: str | None = "auto") -> int:
        """The user types ``text``."""
        message = {"id": self._message_id(message_id), "type": "text", "text": {"body": text}}
        return await self.post(self.notification(wa_id, message), signature=signature)

    async def tap(self, wa_id: str, sent: Sent, label: str) -> int:
        """The user taps the reply button or list row titled ``label`` on ``sent``."""
        option = sent.option(label)
        if sent.kind == "button":
            interactive = {"type": "button_reply", "button_reply": {"id": option["id"], "title": option["title"]}}
        else:
            interactive = {"type": "list_reply", "list_reply": {k: option[k] for k in ("id", "title", "description") if k in option}}
        message = {
            "id": self._message_id(None),
            "type": "interactive",
            "interactive": interactive,
            "context": {"from": self.display_number, "id": sent.id},
        }
        return await self.post(self.notification(wa_id, message))

    async def tap_template(self, wa_id: str, sent: Sent) -> int:
        """The user taps the quick-reply button of the template message ``sent``."""
        quick = [c for c in sent.template.get("components", []) if c.get("type") == "button"]
        assert quick, f"template {sent.template_name} has no button"
        message = {
            "id": self._message_id(None),
            "type": "button",
            "button": {"payload": sent.payload, "text": "…"},
            "context": {"from": self.display_number, "id": sent.id},
        }
        return await self.post(self.notification(wa_id, message))

    def status_entry(self, sent: Sent | str, status: str, *, code: int | None = None, to: str | None = None) -> dict[str, Any]:
        """One ``statuses`` entry for a message the bot sent (or a message id)."""
        wamid = sent if isinstance(sent, str) else sent.id
        address = to or (sent.to if isinstance(sent, Sent) else "919800000000")
        entry: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(self.clock()))}
        if address.isdigit():
            entry["recipient_id"] = address
        if self.person(address) != address or not address.isdigit():
            entry["recipient_user_id"] = self.person(address)
        if status == "failed":
            entry["errors"] = [{"code": code or 131000, "title": "Message failed", "message": "Message failed",
                                "error_data": {"details": "as Meta says"}}]
        return entry

    async def post_statuses(self, entries: list[Any]) -> int:
        """POST a status notification carrying ``entries``; returns the webhook's HTTP status."""
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": self.display_number, "phone_number_id": self.phone_number_id},
            "statuses": entries,
        }
        answer = await self.post({"object": "whatsapp_business_account",
                                  "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]})
        self.status_posts.append(answer)
        return answer

    async def send_status(self, sent: Sent | str, status: str, *, code: int | None = None) -> int:
        """WhatsApp reports ``status`` (sent, delivered, read, failed with ``code``) for a message the bot sent."""
        return await self.post_statuses([self.status_entry(sent, status, code=code)])

    async def change_number(self, old: str, new: str, *, new_bsuid: str | None = None) -> int:
        """``old`` moved to the number ``new``: the system message Meta sends (from the old number)."""
        system: dict[str, Any] = {"body": f"User changed from {old} to {new}", "wa_id": new, "type": "user_changed_number"}
        if new_bsuid:
            system["user_id"] = new_bsuid
            self.bsuids[new] = new_bsuid
        elif old in self.bsuids:
            self.bsuids[new] = self.bsuids[old]
        message = {"id": self._message_id(None), "type": "system", "system": system}
        payload = self.notification(old, message)
        payload["entry"][0]["changes"][0]["value"].pop("contacts")  # system messages carry no contacts
        return await self.post(payload)

    async def send_contact(self, wa_id: str, phone: str, name: str = "Friend") -> int:
        """The user shares a contact card."""
        card = {"name": {"formatted_name": name, "first_name": name}, "phones": [{"phone": phone, "type": "CELL"}]}
        message = {"id": self._message_id(None), "type": "contacts", "contacts": [card]}
        return await self.post(self.notification(wa_id, message))

    async def send_media(self, wa_id: str, kind: str) -> int:
        """The user sends a sticker, an image, a voice note… (``kind`` is WhatsApp's type name)."""
        media = {"mime_type": "image/webp", "sha256": "x", "id": "1234567890"}
        message = {"id": self._message_id(None), "type": kind, kind: media}
        return await self.post(self.notification(wa_id, message))

    async def verify(self, *, mode: str = "subscribe", token: str, challenge: str = "1158201444") -> tuple[int, str]:
        """Meta's subscription handshake against the webhook: ``(status, body)``."""
        assert self._session is not None
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        async with self._session.get(self.webhook_url, params=params) as response:
            return response.status, await response.text()


def check(body: dict[str, Any]) -> str | None:
    """Why WhatsApp would refuse this send request, or ``None``."""
    if body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if "to" in body:
        if not str(body["to"]).isdigit():
            return "to must be a phone number"
    elif "recipient" in body:
        if not re.fullmatch(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}", str(body["recipient"])):
            return "recipient must be a business-scoped user id"
    else:
        return "to or recipient is required"
    kind = body.get("type")
    if kind == "text":
        text = (body.get("text") or {}).get("body", "")
        if not text.strip():
            return "text.body is required"
        if len(text) > TEXT_MAX:
            return f"text.body is {len(text)} characters; the limit is {TEXT_MAX}"
        return None
    if kind == "template":
        template = body.get("template") or {}
        if not template.get("name") or not (template.get("language") or {}).get("code"):
            return "template.name and template.language.code are required"
        for component in template.get("components") or []:
            kind_of = component.get("type")
            if kind_of == "body":
                for parameter in component.get("parameters") or []:
                    if parameter.get("type") != "text" or not str(parameter.get("text", "")).strip():
                        return "a body parameter must be a non-empty text"
            elif kind_of == "button":
                if component.get("sub_type") != "quick_reply" or str(component.get("index")) not in ("0", "1", "2"):
                    return "a button component needs sub_type quick_reply and index 0-2"
                [parameter] = component.get("parameters") or [{}]
                if parameter.get("type") != "payload" or not 0 < len(str(parameter.get("payload", ""))) <= PAYLOAD_MAX:
                    return "a quick-reply button needs one payload parameter"
            elif kind_of != "header":
                return f"unsupported template component {kind_of!r}"
        return None
    if kind == "image":
        image = body.get("image") or {}
        if not image.get("id") and not image.get("link"):
            return "image needs an id or a link"
        if len(image.get("caption", "")) > CAPTION_MAX:
            return f"image.caption is {len(image['caption'])} characters; the limit is {CAPTION_MAX}"
        return None
    if kind != "interactive":
        return f"unsupported message type {kind!r}"
    interactive = body.get("interactive") or {}
    text = (interactive.get("body") or {}).get("text", "")
    if not text.strip():
        return "interactive.body.text is required"
    if len(text) > BODY_MAX:
        return f"interactive.body.text is {len(text)} characters; the limit is {BODY_MAX}"
    footer = (interactive.get("footer") or {}).get("text", "")
    if len(footer) > FOOTER_MAX:
        return f"footer is {len(footer)} characters; the limit is {FOOTER_MAX}"
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= BUTTONS_MAX:
            return f"{len(buttons)} buttons; 1 to {BUTTONS_MAX} are allowed"
        ids, titles = [], []
        for button in buttons:
            reply = button.get("reply") or {}
            if button.get("type") != "reply":
                return "button type must be reply"
            title, button_id = reply.get("title", ""), reply.get("id", "")
            if not title or len(title) > BUTTON_TITLE_MAX:
                return f"button title {title!r} is {len(title)} characters; 1 to {BUTTON_TITLE_MAX} are allowed"
            if not button_id or len(button_id) > BUTTON_ID_MAX or button_id != button_id.strip():
                return f"button id {button_id!r} is not valid"
            ids.append(button_id)
            titles.append(title)
        if len(set(ids)) != len(ids):
            return "button ids must be unique"
        if len(set(titles)) != len(titles):
            return "button titles must be unique"
        return None
    if interactive.get("type") == "list":
        label = action.get("button", "")
        if not label or len(label) > LIST_BUTTON_MAX:
            return f"list button {label!r} is {len(label)} characters; 1 to {LIST_BUTTON_MAX} are allowed"
        sections = action.get("sections") or []
        if not 1 <= len(sections) <= SECTIONS_MAX:
            return f"{len(sections)} sections; 1 to {SECTIONS_MAX} are allowed"
        rows = []
        for section in sections:
            title = section.get("title")
            if len(sections) > 1 and not title:
                return "section title is required when there are several sections"
            if title is not None and len(title) > SECTION_TITLE_MAX:
                return f"section title {title!r} is {len(title)} characters; the limit is {SECTION_TITLE_MAX}"
            rows += section.get("rows") or []
        if not 1 <= len(rows) <= ROWS_MAX:
            return f"{len(rows)} rows; 1 to {ROWS_MAX} are allowed"
        for row in rows:
            title, row_id, description = row.get("title", ""), row.get("id", ""), row.get("description", "")
            if not title or len(title) > ROW_TITLE_MAX:
                return f"row title {title!r} is {len(title)} characters; 1 to {ROW_TITLE_MAX} are allowed"
            if not row_id or len(row_id) > ROW_ID_MAX:
                return f"row id {row_id!r} is not valid"
            if len(description) > ROW_DESCRIPTION_MAX:
                return f"row description is {len(description)} characters; the limit is {ROW_DESCRIPTION_MAX}"
        ids = [row.get("id") for row in rows]
        if len(set(ids)) != len(ids):
            return "row ids must be unique"
        return None
    return f"unsupported interactive type {interactive.get('type')!r}"
