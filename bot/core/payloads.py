"""Every button payload the bot writes, in one place: how each is written, how it is read, and
when a tap on it is refused.

A payload travels through the user's phone and comes back with a tap, so anything can come
back: an old button, a button of another user's message, or a forged one. ``decode`` accepts
only what ``encode`` writes — ASCII digits of a sane length, known prefixes and actions of the
right shape — and returns ``None`` for everything else, which every role answers as an old
button ("That button is from an earlier message" / "no longer works").

| Payload                       | Written as                   | A tap is old when                        |
|-------------------------------|------------------------------|------------------------------------------|
| ``Step(seq, value)``          | ``12:a.fob``                 | ``seq`` is not the session's ``seq``     |
| ``Module(module_id)``         | ``go:payments``              | never (locked modules are explained, unknown ones open the menu) |
| ``ProfileEdit()``             | ``profile:edit``             | never once the profile is confirmed      |
| ``Wizard(seq, action)``       | ``bc:3:next``                | ``seq`` is not the admin draft's ``seq`` |
| ``LeadAction(lead, action)``  | ``ld:7:acc`` / ``ld:7:undo.42`` | the lead is not the startup's, or the action does not fit its status |
| ``LeadPage(filter, page)``    | ``ls:offered:2``             | never (a page past the end shows the last) |
| ``Unlink(answer, linked_at)`` | ``su:yes:1764000000``        | the chat was linked again since          |
| ``MorePage(page, digest)``    | ``wa.more:2:1a2b3c4d``       | the question on screen has other choices |
| ``OwnNumber()``               | ``wa.own_number``            | never (the number comes from WhatsApp)   |
| ``OpenHeld()``                | ``wa.open``                  | never (nothing waiting: back where they were) |

Telegram allows 64 bytes of callback data and WhatsApp 256 (list rows 200); ``MAX_BYTES`` is
the smaller, and every payload written here stays under it for any id the database can hold.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BYTES = 64
MAX_DATA = 256  # the longest data any platform carries back (WhatsApp button ids); longer is forged
MAX_ID_DIGITS = 18  # any id SQLite can hold (64-bit); longer is forged
MAX_SEQ_DIGITS = 9
_ACTION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def whole(text: str, digits: int) -> int | None:
    """``text`` as a whole number if it is 1–``digits`` ASCII digits ("²", "٣", "1_0", "-1" are not)."""
    if not (0 < len(text) <= digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


def _word(text: str, most: int = 48) -> str | None:
    """An action or id made of lowercase ASCII letters, digits and ``_ . -``; ``None`` otherwise."""
    return text if 0 < len(text) <= most and set(text) <= _ACTION_CHARS else None


@dataclass(frozen=True)
class Step:
    """An answer to the question on screen (onboarding, lessons, quiz, menus)."""

    seq: int
    value: str

    def encode(self) -> str:
        return f"{self.seq}:{self.value}"

    def current(self, seq: int) -> bool:
        return self.seq == seq


@dataclass(frozen=True)
class Module:
    """Open a training module (menus, invitations, reminders, certificates)."""

    module_id: str

    def encode(self) -> str:
        return f"go:{self.module_id}"


@dataclass(frozen=True)
class ProfileEdit:
    """/profile's "Change an answer"."""

    def encode(self) -> str:
        return "profile:edit"


@dataclass(frozen=True)
class Wizard:
    """A button of an admin's /broadcast wizard."""

    seq: int
    action: str

    def encode(self) -> str:
        return f"bc:{self.seq}:{self.action}"

    def current(self, seq: int) -> bool:
        return self.seq == seq


@dataclass(frozen=True)
class LeadAction:
    """A lead-card button: ``acc``, ``dec.busy``, ``con``, ``lst``, ``ord``, ``lost.price``, ``view``, ``undo.42``."""

    lead_id: int
    action: str

    def encode(self) -> str:
        return f"ld:{self.lead_id}:{self.action}"

    @property
    def base(self) -> str:
        return self.action.partition(".")[0]

    @property
    def detail(self) -> str:
        return self.action.partition(".")[2]


@dataclass(frozen=True)
class LeadPage:
    """A /leads paging or filter button."""

    status_filter: str
    page: int

    def encode(self) -> str:
        return f"ls:{self.status_filter}:{self.page}"


@dataclass(frozen=True)
class Unlink:
    """The answer to "Unlink this chat from the startup?" (``linked_at`` names the link asked about)."""

    answer: str
    linked_at: int

    def encode(self) -> str:
        return f"su:{self.answer}:{self.linked_at}"


@dataclass(frozen=True)
class MorePage:
    """WhatsApp's "More…" row of a long list: the next page of the question's choices."""

    page: int
    digest: str

    def encode(self) -> str:
        return f"wa.more:{self.page}:{self.digest}"


@dataclass(frozen=True)
class OwnNumber:
    """WhatsApp's "use this number" button at the phone question."""

    def encode(self) -> str:
        return "wa.own_number"


@dataclass(frozen=True)
class OpenHeld:
    """The quick reply of a WhatsApp template that stands in for a held message: the message follows."""

    def encode(self) -> str:
        return "wa.open"


Payload = Step | Module | ProfileEdit | Wizard | LeadAction | LeadPage | Unlink | MorePage | OwnNumber | OpenHeld


def encode(payload: Payload) -> str:
    """The payload as a button carries it."""
    return payload.encode()


def decode(data: str) -> Payload | None:
    """The payload a tapped button carried, or ``None`` when it is none the bot writes (old formats, forgeries)."""
    if not isinstance(data, str) or not data or len(data) > MAX_DATA:
        return None
    head, _, rest = data.partition(":")
    if head == "go":  # an unknown module (renamed since, or made up) opens the menu: any text will do
        return Module(rest)
    if not data.isascii():
        return None
    if head.isdigit():
        seq = whole(head, MAX_SEQ_DIGITS)
        return Step(seq, rest) if seq is not None and rest else None
    if data == "profile:edit":
        return ProfileEdit()
    if data == "wa.own_number":
        return OwnNumber()
    if data == "wa.open":
        return OpenHeld()
    first, _, last = rest.partition(":")
    if head == "bc":
        seq = whole(first, MAX_SEQ_DIGITS)
        return Wizard(seq, last) if seq is not None and _word(last) else None
    if head == "ld":
        lead_id = whole(first, MAX_ID_DIGITS)
        return LeadAction(lead_id, last) if lead_id is not None and _word(last) else None
    if head == "ls":
        page = whole(last, 6)  # a million pages of leads is more than any startup will have
        return LeadPage(first, page) if page is not None and _word(first) else None
    if head == "su":
        linked_at = whole(last, MAX_ID_DIGITS)
        return Unlink(first, linked_at) if first in ("yes", "no") and linked_at is not None else None
    if head == "wa.more":
        page = whole(first, 4)
        return MorePage(page, last) if page is not None and last.isalnum() and len(last) <= 32 else None
    return None
