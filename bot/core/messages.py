"""What flows into and out of the engine, in neutral terms every channel can render.

Text is "chat HTML": plain text that may contain <b>…</b> and <i>…</i>; anything that came from a
user is escaped before it is put into a message. Channels render it (Telegram passes it through,
the terminal strips the tags, WhatsApp turns <b> into *bold*).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as _replace
from enum import Enum


class InKind(str, Enum):
    """What kind of thing a user sent."""

    TEXT = "text"
    CHOICE = "choice"  # a button press; ``data`` is the button's stable payload
    CONTACT = "contact"  # a shared phone number; ``data`` is the number
    COMMAND = "command"  # ``/name args``; ``data`` is the name, ``text`` the args
    MEDIA = "media"  # sticker, voice note, photo, …: ``data`` says which


FOREIGN_CONTACT = "foreign_contact"
"""``Inbound.data`` of a contact card that is not the sender's own (kind ``MEDIA``)."""


@dataclass(frozen=True)
class Inbound:
    """One user event, already stripped of platform types."""

    kind: InKind
    text: str = ""
    data: str = ""

    @classmethod
    def say(cls, text: str) -> Inbound:
        """A typed message (commands are recognised here, as every channel needs that)."""
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1:
            head, _, rest = stripped[1:].partition(" ")
            name = head.split("@", 1)[0].lower()
            if name and all(c.isascii() and (c.isalnum() or c == "_") for c in name):
                return cls(InKind.COMMAND, text=rest.strip(), data=name)
        return cls(InKind.TEXT, text=text)

    @classmethod
    def tap(cls, payload: str) -> Inbound:
        """A button press carrying ``payload``."""
        return cls(InKind.CHOICE, data=payload)

    @classmethod
    def contact(cls, phone: str) -> Inbound:
        """A contact shared with the 'share my number' button."""
        return cls(InKind.CONTACT, data=phone)

    @classmethod
    def foreign_contact(cls) -> Inbound:
        """A contact card of someone other than the sender: never taken as the sender's own number.

        It carries no number at all (nothing of a third person is handed on); where no role answers
        it specially it is, like a sticker, something the bot cannot read.
        """
        return cls(InKind.MEDIA, data=FOREIGN_CONTACT)

    @classmethod
    def media(cls, what: str) -> Inbound:
        """Something that is not text: a sticker, a voice note, a photo…"""
        return cls(InKind.MEDIA, data=what)


@dataclass(frozen=True)
class Choice:
    """A button: a stable ``id`` (the payload) and a translated ``label``."""

    id: str
    label: str


@dataclass(frozen=True)
class Say:
    """A message to the user, optionally with buttons.

    ``columns`` is how many buttons a row should hold where the channel lays them out;
    ``ask_contact`` asks the channel to offer its "share my phone number" control;
    ``replace`` asks it to redraw the message whose button was just tapped (a multi-select
    toggling its ticks) instead of sending a new one, where it can; ``again`` is a line put
    first when the message is sent again after a try whose outcome is unknown (it may have
    arrived), so a second copy is recognisable as one.
    """

    text: str
    choices: tuple[Choice, ...] = ()
    columns: int = 1
    ask_contact: bool = False
    replace: bool = False
    again: str = ""

    def resent(self) -> Say:
        """This message as its second copy reads."""
        return _replace(self, text=f"{self.again}\n{self.text}", again="") if self.again else self


@dataclass(frozen=True)
class Picked:
    """The question the user just answered by button should now show ``label`` and no buttons."""

    label: str


@dataclass(frozen=True)
class Toast:
    """A short notice tied to a button press (Telegram shows it as a pop-up)."""

    text: str


@dataclass(frozen=True)
class Photo:
    """An image to send (a chart, a QR code) with a caption.

    A ``ref`` names a picture drawn when it is sent (a lesson's diagram, in the reader's
    language), so the outbox stores the name, not the bytes; ``data`` is then empty.
    """

    data: bytes
    caption: str = ""
    filename: str = "image.png"
    ref: str = ""


@dataclass(frozen=True)
class Menu:
    """The chat's menu button should open the dashboard (``dashboard``) or be the plain command menu again.

    Only Telegram has such a button (a Mini App); other channels ignore it.
    """

    dashboard: bool


Outbound = Say | Picked | Toast | Photo | Menu


@dataclass(frozen=True)
class Tapped:
    """The message whose button the user just tapped: the platform's id for it and its text.

    Replies are sent after the turn is stored, by the outbox; a ``Picked`` or a redrawn
    multi-select needs to know which message to edit, and what it said.
    """

    message_ref: str
    text: str = ""


@dataclass(frozen=True)
class Event:
    """Something that happened that storage or another service must act on.

    ``kind`` is a stable name ("consent_given", "onboarding_confirmed", "module_passed", …);
    ``data`` holds plain values.
    """

    kind: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InboxItem:
    """An update as a platform sent it, stored before it is acknowledged: its id and raw JSON."""

    update_id: str
    payload: str
    chat_ref: str | None = None  # whose update it is, where the platform says


@dataclass(frozen=True)
class UserKey:
    """Who a user is on which channel."""

    channel: str
    user_ref: str
