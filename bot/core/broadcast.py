"""What a broadcast says and when it goes out, as plain values (no I/O).

Two kinds: an invitation to a training module (each owner gets it in their own language, with a
"Start module" button whose payload ``go:<module_id>`` the engine opens whatever is on screen)
and an announcement the admin wrote in both languages. Admins schedule in India time.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re

from . import payloads
from .content import Module
from .messages import Choice, Say
from .segments import Problem
from .session import N_, P_, Texts

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
ANNOUNCEMENT_MAX = 3000  # leaves room for the footer within Telegram's 4096
INVITATION = N_(
    "📘 <b>Training module: {title}</b>\n{summary}\n\n"
    "Short lessons on your phone, then a 5-question quiz. Tap the button to begin."
)
START_MODULE = N_("▶️ Start module")
FOOTER = N_("<i>/stop_broadcasts – no more announcements</i>")
_DEVANAGARI = re.compile(r"[\u0900-\u097F]")
_LATIN = re.compile(r"[A-Za-z]")


def written_in(text: str) -> str:
    """"hi" when most of the letters of ``text`` are Devanagari, else "en"."""
    return "hi" if len(_DEVANAGARI.findall(text)) > len(_LATIN.findall(text)) else "en"
_WHEN = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})[ T]+(\d{1,2})(?::(\d{2}))?\s*(?:h|hrs|ist)?\s*$", re.IGNORECASE)


def invitation(module: Module, texts: Texts, lang: str) -> Say:
    """The invitation to ``module`` in ``lang``, with its "Start module" button."""
    tr = lambda msgid: texts.gettext(lang, msgid)  # noqa: E731
    text = tr(INVITATION).format(title=tr(module.title), summary=tr(module.summary))
    return Say(f"{text}\n\n{tr(FOOTER)}", (Choice(payloads.Module(module.id).encode(), tr(START_MODULE)),))


def announcement(text: str, texts: Texts, lang: str) -> Say:
    """An announcement (already chat HTML) with the opt-out footer in ``lang``."""
    return Say(f"{text}\n\n{texts.gettext(lang, FOOTER)}")


def escape_admin_text(text: str) -> str:
    """What an admin typed, made chat HTML (shown exactly as typed)."""
    return html.escape(text.strip(), quote=False)


def check_text(text: str | None, lang: str) -> list[Problem]:
    """Problems with the ``lang`` version of an announcement; a missing language is refused."""
    text = (text or "").strip()
    if not text:
        missing = N_("The English text is missing. Both languages are needed.") if lang == "en" else N_(
            "The Hindi text is missing. Both languages are needed."
        )
        return [Problem(missing)]
    problems = []
    if len(text) > ANNOUNCEMENT_MAX:
        problems.append(Problem(N_("That is {n} characters; keep it under {limit}."), {"n": len(text), "limit": ANNOUNCEMENT_MAX}))
    if lang == "hi" and not _DEVANAGARI.search(text):
        problems.append(Problem(N_("That does not look like Hindi: there is no Devanagari in it. Please send the Hindi text.")))
    if lang == "en" and not _LATIN.search(text):
        problems.append(Problem(N_("That does not look like English. Please send the English text first.")))
    return problems


def check_announcement(en: str | None, hi: str | None) -> list[Problem]:
    """Problems with both versions of an announcement."""
    problems = check_text(en, "en") + check_text(hi, "hi")
    if not problems and en.strip() == hi.strip():
        problems.append(Problem(N_("The Hindi text is the same as the English one. Please send the Hindi text.")))
    return problems


def parse_when(text: str, now: float) -> int | Problem:
    """``YYYY-MM-DD HH`` (or ``HH:MM``) in India time → epoch seconds; refused if not in the future."""
    match = _WHEN.match(text)
    example = {"example": example_when(now)}
    if not match:
        return Problem(N_("Please type the date and hour in India time like this: {example}"), example)
    year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
    try:
        when = dt.datetime(year, month, day, hour, minute, tzinfo=IST)
    except ValueError:
        return Problem(N_("There is no such date or hour. Please type it like this: {example}"), example)
    at = int(when.timestamp())
    if at <= now:
        return Problem(N_("That time has already passed. Please choose a time in the future."))
    if at > now + 366 * 86400:
        return Problem(N_("That is more than a year away. Please choose an earlier time."))
    return at


def example_when(now: float) -> str:
    """Tomorrow 10:00 India time as an admin would type it ("2027-01-15 10"): an example never in the past."""
    return dt.datetime.fromtimestamp(at_hour(now, 10, days=1), IST).strftime("%Y-%m-%d %H")


def at_hour(now: float, hour: int, days: int = 0) -> int:
    """Epoch seconds of ``hour``:00 India time, ``days`` after today (India time)."""
    today = dt.datetime.fromtimestamp(now, IST).date() + dt.timedelta(days=days)
    return int(dt.datetime(today.year, today.month, today.day, hour, tzinfo=IST).timestamp())


def duration(seconds: float, texts: Texts, lang: str) -> str:
    """A delivery time as people say it: under a minute / about 7 minutes / about 1 h 7 min."""
    seconds = max(0.0, seconds)
    tr = lambda msgid: texts.gettext(lang, msgid)  # noqa: E731
    if seconds < 60:
        return tr(N_("under a minute"))
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return texts.ngettext(lang, *P_("about {n} minute", "about {n} minutes"), minutes).format(n=texts.number(lang, minutes))
    return tr(N_("about {h} h {m} min")).format(h=texts.number(lang, minutes // 60), m=texts.number(lang, minutes % 60))
