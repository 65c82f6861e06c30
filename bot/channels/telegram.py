"""The Telegram channel: python-telegram-bot as the transport, nothing more.

Each update becomes an ``Inbound``; the conversation service decides; the replies are rendered
here, within Telegram's limits (4096-character messages, 64-byte callback data, HTML parse
mode). Conversation state lives in our database, not in PTB (no ConversationHandler, no PTB
persistence), so updates run concurrently across users and in order per user.

Outgoing calls whose answer is only a ``message_id`` or ``True`` (send, edit, answer a tap) go
out raw (``_call``): PTB still sends them and still raises its own errors (``RetryAfter``,
``Forbidden``, ``BadRequest``, ``TimedOut``, ``NetworkError``), but the answer stays the JSON
Telegram sent, instead of being built into a ``Message`` nobody reads. Keyboards are sent as
their JSON text, made once per distinct set of buttons (``markup_json``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InputFile,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler

from ..core.errors import StorageError
from ..core.messages import Choice, Inbound, Menu, Photo, Picked, Say, Tapped, Toast, UserKey
from ..core.session import N_
from ..services.conversation import Reply
from ..services.delivery import Blocked, Refused, RetryLater
from ..services.dispatch import Who
from ..services.hub import Hub
from .aiohttp_request import AiohttpRequest
from .tolerant_bot import TolerantBot
from .render import answered, plain, safe_html, split_text

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
CHANNEL = "telegram"
SHARE_NUMBER = N_("📱 Share my number")
TRY_AGAIN = N_("Sorry, I could not save that just now. Please send it again in a minute.")
MENU_BUTTON = N_("Dashboard")
"""The label of the menu button that opens the dashboard as a Mini App in staff and admin chats."""
_MEDIA = ("sticker", "voice", "audio", "photo", "video", "video_note", "animation", "document", "location", "venue", "poll", "dice")

# The command menu, in both languages (setMyCommands with language_code "hi" and the default).
COMMANDS = (
    ("start", N_("Begin or continue")),
    ("learn", N_("Training modules")),
    ("progress", N_("Your progress")),
    ("score", N_("Your export readiness")),
    ("profile", N_("Your details")),
    ("certificate", N_("Your certificate")),
    ("language", N_("हिन्दी / English")),
    ("help", N_("What I can do")),
    ("stop_reminders", N_("No more reminders")),
    ("my_data", N_("What I have stored about you")),
    ("restart", N_("Start again")),
    ("delete_my_data", N_("Erase your data")),
    ("cancel", N_("Cancel what you are doing")),
)


# Admins' chats also get these (BotCommandScopeChat); the public menu never lists them.
ADMIN_COMMANDS = (
    ("broadcast", N_("Send a module or announcement")),
    ("broadcast_cancel", N_("Stop the broadcast")),
    ("stats", N_("Funnel: stats, or stats chart")),
)


def to_inbound(update: Update) -> Inbound | None:
    """The platform-neutral form of ``update``; ``None`` for updates we do not handle."""
    if update.callback_query is not None:
        return Inbound.tap(update.callback_query.data or "")
    message = update.message
    if message is None:
        return None
    if message.text is not None:
        return Inbound.say(message.text)
    if message.contact is not None:
        # The share-my-number button sends the sender's own card (its user_id is theirs); a card
        # picked from the address book is someone else's and is never taken as the owner's number.
        sender = message.from_user.id if message.from_user is not None else None
        if message.contact.user_id is None or message.contact.user_id != sender:
            return Inbound.foreign_contact()
        return Inbound.contact(message.contact.phone_number or "")
    for kind in _MEDIA:
        if getattr(message, kind, None):
            return Inbound.media(kind)
    return Inbound.media("other")


HTML = "HTML"  # parse_mode of every message and caption (chat HTML, made safe by safe_html)
REMOVE_KEYBOARD = '{"remove_keyboard":true}'  # ReplyKeyboardRemove().to_dict(), as JSON text


def _rows(choices: Sequence[Choice], columns: int) -> list[list[dict[str, str]]]:
    """The inline buttons of ``choices`` as Bot API JSON, in rows of ``columns``; payloads over 64
    bytes are dropped (logged)."""
    buttons = []
    for choice in choices:
        if not 0 < len(choice.id.encode()) <= CALLBACK_DATA_LIMIT:
            log.error("button payload too long for Telegram, dropped: %r", choice.id)
            continue
        buttons.append({"text": plain(choice.label)[:64], "callback_data": choice.id})
    columns = max(1, columns)
    return [buttons[i : i + columns] for i in range(0, len(buttons), columns)]


_MARKUPS: dict[tuple, str | None] = {}
_MARKUPS_MAX = 1024  # distinct keyboards kept; many owners at one question share one


def markup_json(choices: Sequence[Choice], columns: int) -> str | None:
    """The ``reply_markup`` of inline buttons as the JSON text Telegram takes; ``None`` without buttons.

    The same buttons (every owner at one question) give the same text, made once.
    """
    if not choices:
        return None
    key = (tuple(choices), columns)
    try:
        return _MARKUPS[key]
    except KeyError:
        pass
    rows = _rows(choices, columns)
    text = json.dumps({"inline_keyboard": rows}, ensure_ascii=False, separators=(",", ":")) if rows else None
    if len(_MARKUPS) >= _MARKUPS_MAX:
        _MARKUPS.clear()
    _MARKUPS[key] = text
    return text


def contact_markup(label: str) -> str:
    """The one-button reply keyboard that shares the user's own number (``request_contact``)."""
    return json.dumps({"keyboard": [[{"text": label, "request_contact": True}]], "one_time_keyboard": True,
                       "resize_keyboard": True}, ensure_ascii=False, separators=(",", ":"))


async def _call(bot, endpoint: str, params: dict[str, Any]) -> Any:
    """One Bot API call; returns Telegram's ``result`` as JSON (a dict, or ``True``), not as PTB objects.

    This is the request ``Bot.do_api_request(endpoint, api_kwargs=params)`` makes, minus its
    warning that PTB has a method for ``endpoint`` (it warns on every call): PTB encodes the
    parameters (TelegramObjects included; ``None`` values dropped), posts them through the bot's
    transport and raises its errors (``RetryAfter``, ``Forbidden``, ``BadRequest``, ``TimedOut``,
    ``NetworkError``) exactly as its own methods do.
    """
    return await bot._post(endpoint, params)  # noqa: SLF001 - see above


def _message_id(result: Any) -> str | None:
    """The id of the message a send returned (a dict), as the outbox stores it."""
    return str(result["message_id"]) if isinstance(result, dict) and "message_id" in result else None


async def send_text(bot, chat_id: int | str, text: str, markup: str | None = None, *, parse_mode: str | None = HTML) -> Any:
    """sendMessage, raw: the sent message as JSON."""
    return await _call(bot, "sendMessage", {"chat_id": chat_id, "text": text, "parse_mode": parse_mode, "reply_markup": markup})


async def edit_text(bot, chat_id: int | str, message_id: int | str, text: str, markup: str | None = None) -> Any:
    """editMessageText (HTML), raw; without ``markup`` the message's buttons go."""
    return await _call(bot, "editMessageText", {"chat_id": chat_id, "message_id": int(message_id), "text": text,
                                                "parse_mode": HTML, "reply_markup": markup})


async def edit_markup(bot, chat_id: int | str, message_id: int | str, markup: str | None = None) -> Any:
    """editMessageReplyMarkup, raw; without ``markup`` the buttons go."""
    return await _call(bot, "editMessageReplyMarkup", {"chat_id": chat_id, "message_id": int(message_id), "reply_markup": markup})


async def answer_tap(bot, query_id: str, text: str | None = None) -> Any:
    """answerCallbackQuery, raw: stops the button's spinner, with a pop-up ``text`` if given."""
    return await _call(bot, "answerCallbackQuery", {"callback_query_id": query_id, "text": text})


def menu_button_json(label: str | None = None, url: str = "") -> str:
    """A ``MenuButton``: the Mini App at ``url`` labelled ``label``, or (no label) the default command menu."""
    if label is None:
        return '{"type":"default"}'
    return json.dumps({"type": "web_app", "text": label, "web_app": {"url": url}}, ensure_ascii=False, separators=(",", ":"))


async def set_menu_button(bot, chat_id: int | str | None, button: str) -> Any:
    """setChatMenuButton, raw (no ``chat_id``: the default for every private chat)."""
    return await _call(bot, "setChatMenuButton", {"chat_id": chat_id, "menu_button": button})


async def send_picture(bot, chat_id: int | str, data: bytes, caption: str) -> Any:
    """sendPhoto (an upload, HTML caption), raw: the sent message as JSON."""
    return await _call(bot, "sendPhoto", {"chat_id": chat_id, "photo": InputFile(data), "caption": caption, "parse_mode": HTML})


class TelegramChannel:
    """Handles every update and renders the replies."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.inbox = hub.inbox
        # In webhook mode a tap is answered in the webhook's own response, not by a request of
        # its own: the webhook request waits here, by callback query id, for what to answer.
        self.waiting: dict[str, asyncio.Future] = {}

    def answer_in_response(self, query_id: str) -> asyncio.Future:
        """A future the answer to tap ``query_id`` goes to (its pop-up text, or None) instead of to Telegram.

        Whoever waits on it must ``stop_waiting`` when they give up; the tap is then answered
        by a request of its own, as in polling mode.
        """
        future = asyncio.get_running_loop().create_future()
        self.waiting[query_id] = future
        return future

    def stop_waiting(self, query_id: str, future: asyncio.Future) -> None:
        """Nobody waits on ``future`` any longer: the answer to ``query_id`` goes out by request."""
        if self.waiting.get(query_id) is future:
            del self.waiting[query_id]
        future.cancel()

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The one handler: parse, hand to the service, render; then the stored update may go."""
        try:
            await self._on_update(update, context)
        finally:
            if self.inbox is not None:
                self.inbox.done(CHANNEL, str(update.update_id))

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        query = update.callback_query
        # a private chat's id is its user's id; a tap "from" someone else on it is forged, never another's turn
        if chat is None or user is None or chat.type != ChatType.PRIVATE or chat.id != user.id:
            if query is not None:
                await self._answer(query)
            return
        inbound = to_inbound(update)
        if inbound is None:
            return
        key = UserKey(CHANNEL, str(chat.id))
        tapped = query.message if query is not None else None
        reply_to = Tapped(str(tapped.message_id), tapped.text_html if tapped.text else "") if isinstance(tapped, Message) else None
        try:
            who = Who(key, platform_user_id=user.id, lang_hint=user.language_code, update_id=str(update.update_id),
                      reply_to=reply_to)
            reply = await self.hub.dispatcher.handle(who, inbound)
        except Exception as exc:  # noqa: BLE001 - the user must hear back whatever went wrong
            if isinstance(exc, StorageError):
                log.error("storage failed (%s); the user was asked to try again", exc)
            else:
                log.exception("could not handle an update; the user was asked to try again")
            lang = "en" if (user.language_code or "").startswith("en") else "hi"
            if query is not None:
                await self._answer(query)
            try:
                await send_text(context.bot, chat.id, self.hub.texts.gettext(lang, TRY_AGAIN), parse_mode=None)
            except TelegramError as send_error:
                log.warning("could not tell the user to try again: %s", send_error)
            return
        if reply is None:  # a repeated update
            if query is not None:
                await self._answer(query)
            return
        if reply.queued:  # the replies are on their way through the outbox; a pop-up is instant or never
            if query is not None:
                toast = next((o.text for o in reply.outputs if isinstance(o, Toast)), None)
                await self._answer(query, plain(toast) if toast else None)
            return
        await self.render(context.bot, chat.id, reply, query.message if query else None, query)

    async def _answer(self, query, text: str | None = None) -> None:
        waiting = self.waiting.pop(query.id, None)
        if waiting is not None and not waiting.done():  # the webhook's response carries it
            waiting.set_result(text[:200] if text else None)
            return
        try:
            await answer_tap(query.get_bot(), query.id, text[:200] if text else None)
        except BadRequest as exc:  # too old: the user tapped long ago; nothing to do
            log.info("callback answer refused: %s", exc)

    async def render(self, bot, chat_id: int, reply: Reply, tapped: Message | None, query=None) -> None:
        """Send ``reply``'s outputs: messages, edits of the tapped question, pop-up notices."""
        toast = next((o.text for o in reply.outputs if isinstance(o, Toast)), None)
        if query is not None:
            await self._answer(query, plain(toast) if toast else None)
        close_contact = any(e.kind == "answer" and e.data.get("step_kind") == "phone" for e in reply.events)
        try:
            for output in reply.outputs:
                if isinstance(output, Picked) and tapped is not None:
                    await self._mark_answered(tapped, output.label)
                elif isinstance(output, Say):
                    if output.replace and tapped is not None:
                        await self._redraw(tapped, output)
                        continue
                    markup = markup_json(output.choices, output.columns)
                    if output.ask_contact:
                        markup = contact_markup(self.hub.texts.gettext(reply.lang, SHARE_NUMBER))
                    elif close_contact:
                        close_contact = False
                        if markup is None:
                            markup = REMOVE_KEYBOARD
                        else:  # a message carries one keyboard: take the share-number button away first
                            done = "✅ " + self.hub.texts.gettext(reply.lang, "Done")
                            await send_text(bot, chat_id, done, REMOVE_KEYBOARD, parse_mode=None)
                    await self._send(bot, chat_id, output.text, markup)
                elif isinstance(output, Photo) and output.data:  # a named picture is drawn only on the outbox road
                    await send_picture(bot, chat_id, output.data, safe_html(output.caption)[:1024])
        except Forbidden:
            log.info("chat %s has blocked the bot", chat_id)

    async def _send(self, bot, chat_id: int, text: str, markup: str | None) -> None:
        pieces = split_text(safe_html(text), TEXT_LIMIT)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            await send_text(bot, chat_id, piece, markup if last else None)

    async def _mark_answered(self, message: Message, label: str) -> None:
        """Show the chosen answer under the question and take its buttons away."""
        text = f"{message.text_html}\n\n✅ <b>{safe_html(answered(label))}</b>" if message.text else None
        try:
            if text and len(text) <= TEXT_LIMIT:
                await edit_text(message.get_bot(), message.chat_id, message.message_id, text)
            else:
                await edit_markup(message.get_bot(), message.chat_id, message.message_id)
        except BadRequest as exc:
            log.info("could not mark answer: %s", exc)

    async def _redraw(self, message: Message, say: Say) -> None:
        try:
            await edit_markup(message.get_bot(), message.chat_id, message.message_id, markup_json(say.choices, say.columns))
        except BadRequest as exc:
            log.info("could not redraw: %s", exc)

    async def set_commands(self, bot) -> None:
        """The command menu in English (default) and Hindi."""
        texts = self.hub.texts
        for lang, code in (("en", None), ("hi", "hi")):
            commands = [BotCommand(name, texts.gettext(lang, description)) for name, description in COMMANDS]
            await bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=code)

    async def set_admin_commands(self, bot) -> None:
        """Each admin's chat also lists the admin commands (owners never see them)."""
        texts = self.hub.texts
        for admin_id in sorted(self.hub.admin_ids):
            for lang, code in (("en", None), ("hi", "hi")):
                commands = [BotCommand(name, texts.gettext(lang, text)) for name, text in (*COMMANDS, *ADMIN_COMMANDS)]
                try:
                    await bot.set_my_commands(commands, scope=BotCommandScopeChat(admin_id), language_code=code)
                except TelegramError as exc:  # the admin has not opened a chat with the bot yet
                    log.info("admin menu for %s not set: %s", admin_id, exc)
                    break


def _outcome(exc: TelegramError) -> Exception:
    """The worker's name for a Telegram failure: ``RetryLater``, ``Blocked`` or ``Refused``."""
    if isinstance(exc, RetryAfter):
        retry = exc.retry_after
        seconds = retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry)
        return RetryLater("flood control", seconds, flood=True)
    if isinstance(exc, Forbidden):
        return Blocked(str(exc))
    if isinstance(exc, BadRequest):  # a subclass of NetworkError: check it first
        return Refused(str(exc))
    return RetryLater(str(exc))


class TelegramSender:
    """Sends outbox messages with the PTB bot, mapping Telegram's errors to the worker's outcomes."""

    def __init__(self, bot, texts=None, menu_url: str = ""):
        self.bot = bot
        self.texts = texts
        self.menu_url = menu_url  # the Mini App's address; Telegram opens only https pages

    async def reply(self, row) -> str | None:
        """Render one stored reply: a message, an edit of the tapped question, a photo."""
        output, tapped, chat_id = row.output, row.reply_to, int(row.chat_ref)
        try:
            if isinstance(output, Picked):
                # Cosmetic, and maybe done already if this is a resend after a crash: first try only.
                if tapped is not None and row.attempts <= 1:
                    await self._mark_answered(chat_id, tapped, output.label)
                return None
            if isinstance(output, Toast):  # shown as a pop-up when the tap was answered
                return None
            if isinstance(output, Menu):
                await self._set_menu(chat_id, output, row.lang)
                return None
            if isinstance(output, Photo):
                return _message_id(await send_picture(self.bot, chat_id, output.data, safe_html(output.caption)[:1024]))
            say = output if isinstance(output, Say) else row.say
            if say.replace and tapped is not None:
                if row.attempts > 1:  # a resend: the buttons may be redrawn already (Telegram refuses "not modified")
                    return None
                try:
                    await edit_markup(self.bot, chat_id, tapped.message_ref, markup_json(say.choices, say.columns))
                except BadRequest as exc:
                    log.info("could not redraw: %s", exc)
                return None
            markup = markup_json(say.choices, say.columns)
            if say.ask_contact:
                markup = contact_markup(self._gettext(row.lang, SHARE_NUMBER))
            elif row.close_contact:
                if markup is None:
                    markup = REMOVE_KEYBOARD
                else:  # a message carries one keyboard: take the share-number button away first
                    done = "✅ " + self._gettext(row.lang, "Done")
                    await send_text(self.bot, chat_id, done, REMOVE_KEYBOARD, parse_mode=None)
            pieces = split_text(safe_html(say.text), TEXT_LIMIT)
            message = None
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                message = await send_text(self.bot, chat_id, piece, markup if last else None)
            return _message_id(message)
        except TelegramError as exc:
            raise _outcome(exc) from exc

    def _gettext(self, lang: str, msgid: str) -> str:
        return self.texts.gettext(lang or "hi", msgid) if self.texts is not None else msgid

    async def _set_menu(self, chat_id: int, menu: Menu, lang: str) -> None:
        """The chat's menu button: the dashboard (when it is served over https), or the command menu again."""
        if menu.dashboard and not self.menu_url.startswith("https://"):
            return  # Telegram opens Mini Apps from https only; the sign-in link still works
        label = self._gettext(lang, MENU_BUTTON) if menu.dashboard else None
        try:
            await set_menu_button(self.bot, chat_id, menu_button_json(label, self.menu_url))
        except BadRequest as exc:  # cosmetic: the chat still has /dashboard
            log.info("could not set the menu button: %s", exc)

    async def _mark_answered(self, chat_id: int, tapped: Tapped, label: str) -> None:
        """Show the chosen answer under the question and take its buttons away."""
        text = f"{tapped.text}\n\n✅ <b>{safe_html(answered(label))}</b>" if tapped.text else None
        try:
            if text and len(text) <= TEXT_LIMIT:
                await edit_text(self.bot, chat_id, tapped.message_ref, text)
            else:
                await edit_markup(self.bot, chat_id, tapped.message_ref)
        except BadRequest as exc:  # too old to edit, or already marked (a resent reply)
            log.info("could not mark answer: %s", exc)

    async def send(self, chat_ref: str, say: Say) -> str | None:
        try:
            message = await send_text(self.bot, int(chat_ref), split_text(safe_html(say.text), TEXT_LIMIT)[0],
                                      markup_json(say.choices, say.columns))
        except RetryAfter as exc:
            retry = exc.retry_after
            raise RetryLater("flood control", retry.total_seconds() if hasattr(retry, "total_seconds") else float(retry), flood=True) from exc
        except Forbidden as exc:
            raise Blocked(str(exc)) from exc
        except BadRequest as exc:  # a subclass of NetworkError: check it first
            raise Refused(str(exc)) from exc
        except (TimedOut, NetworkError) as exc:
            raise RetryLater(str(exc)) from exc
        return _message_id(message)

    async def edit(self, chat_ref: str, message_ref: str, say: Say) -> None:
        """Replace the text of a message the bot sent (the admins' broadcast status)."""
        try:
            await edit_text(self.bot, int(chat_ref), message_ref, split_text(safe_html(say.text), TEXT_LIMIT)[0],
                            markup_json(say.choices, say.columns))
        except RetryAfter as exc:
            raise RetryLater("flood control", flood=True) from exc
        except Forbidden as exc:
            raise Blocked(str(exc)) from exc
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise Refused(str(exc)) from exc
        except (TimedOut, NetworkError) as exc:
            raise RetryLater(str(exc)) from exc


def build_application(hub: Hub, token: str, *, base_url: str | None = None) -> Application:
    """The PTB Application for the bot ``token``, talking to ``base_url`` (a self-hosted Bot API) if given.

    Only the channel: every update goes to one handler. The runtime (``bot.runtime``) starts the
    workers and the receiver (``DurablePolling`` or the webhook), which store each update
    before it is acknowledged.
    """
    transport = None
    if os.environ.get("TELEGRAM_HTTP", "aiohttp").lower() != "httpx":  # httpx: PTB's default, as a fallback
        transport = AiohttpRequest()  # one session and pool for getUpdates and every other call
    urls = {"base_url": base_url, "base_file_url": base_url.replace("/bot", "/file/bot", 1)} if base_url else {}
    bot = TolerantBot(token, request=transport, get_updates_request=transport, **urls)
    # No JobQueue: the runtime's supervisor runs the periodic work (and APScheduler is not installed)
    application = ApplicationBuilder().bot(bot).updater(None).job_queue(None).concurrent_updates(True).build()
    channel = TelegramChannel(hub)
    application.add_handler(TypeHandler(Update, channel.on_update))
    application.bot_data["channel"] = channel
    return application


async def set_menus(bot, hub: Hub, menu_url: str = "") -> None:
    """The command menus (owners', and each admin's) and, over https, each admin's dashboard button.

    A failure is logged, never fatal. Staff chats get their button when they link (a ``Menu`` reply).
    """
    channel = TelegramChannel(hub)
    try:
        await channel.set_commands(bot)
        await channel.set_admin_commands(bot)
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)
    if not menu_url.startswith("https://"):
        return
    label = hub.texts.gettext("en", MENU_BUTTON)  # an admin's language is not known yet (admin_lang's default); /dashboard relabels it
    for admin_id in sorted(hub.admin_ids):
        try:
            await set_menu_button(bot, admin_id, menu_button_json(label, menu_url))
        except TelegramError as exc:  # the admin has not opened a chat with the bot yet
            log.info("dashboard button for an admin not set: %s", exc)
