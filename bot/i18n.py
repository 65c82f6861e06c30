"""Translations and Indian number/date formats, from the gettext catalogs in ``locales/``.

English strings are the msgids; ``locales/hi/LC_MESSAGES/*.po`` hold the Hindi, one catalog per
domain (``messages`` for the Python code, one per content file such as ``onboarding`` or
``export_ready``). The .po files are read directly with Babel at start-up (a few hundred strings,
a few milliseconds), so there is no compile step to forget after editing a translation.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

from .core.session import N_

LANGUAGES = ("hi", "en")
_LOCALES = {"hi": Locale.parse("hi_IN"), "en": Locale.parse("en_IN")}
IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
LAKH_WORD = N_("{amount} lakh")
CRORE_WORD = N_("{amount} crore")
_MEMO_LIMIT = 4096


def default_locales_dir() -> Path:
    """``locales/`` at the project root (beside the ``bot`` package)."""
    return Path(__file__).resolve().parent.parent / "locales"


# Which form a count takes (gettext's Plural-Forms of each catalog): Hindi "nplurals=2; plural=(n > 1)".
PLURAL_INDEX = {"en": lambda n: int(n != 1), "hi": lambda n: int(n > 1)}


class Catalogs:
    """All translations for all languages, and locale-aware formatting (the core's ``Texts``)."""

    def __init__(self, tables: dict[str, dict[str, str]], plurals: dict[str, dict[str, tuple[str, ...]]] | None = None):
        self._tables = tables
        self._plurals = plurals or {}  # lang -> English singular -> the translated forms
        self._memo: dict[tuple, str] = {}  # formatted numbers: Babel is slow and turns repeat them

    def _memoized(self, key: tuple, make) -> str:
        text = self._memo.get(key)
        if text is None:
            if len(self._memo) >= _MEMO_LIMIT:  # bounded: memory must not grow with use
                self._memo.clear()
            text = self._memo[key] = make()
        return text

    @classmethod
    def load(cls, locales_dir: Path | None = None) -> Catalogs:
        """Read every non-fuzzy translation from ``locales_dir/<lang>/LC_MESSAGES/*.po``."""
        root = locales_dir or default_locales_dir()
        tables: dict[str, dict[str, str]] = {}
        plurals: dict[str, dict[str, tuple[str, ...]]] = {}
        for lang in LANGUAGES:
            table: dict[str, str] = {}
            forms: dict[str, tuple[str, ...]] = {}
            for po in sorted((root / lang / "LC_MESSAGES").glob("*.po")):
                with po.open("rb") as handle:
                    catalog = read_po(handle, locale=lang)
                for message in catalog:
                    if not message.id or message.fuzzy:
                        continue
                    if isinstance(message.id, str) and message.string:
                        table[message.id] = message.string
                    elif isinstance(message.id, (tuple, list)) and message.string and all(message.string):
                        forms[message.id[0]] = tuple(message.string)
            tables[lang], plurals[lang] = table, forms
        return cls(tables, plurals)

    def ngettext(self, lang: str, singular: str, plural: str, n: int) -> str:
        """The form for the count ``n``: English "1 owner" / "2 owners"; Hindi by its catalog's
        rule (one form for 0 and 1, another above), English when there is no translation."""
        forms = self._plurals.get(lang, {}).get(singular)
        if not forms:
            return singular if n == 1 else plural
        index = PLURAL_INDEX.get(lang, PLURAL_INDEX["en"])(n)
        return forms[min(index, len(forms) - 1)]

    def gettext(self, lang: str, msgid: str) -> str:
        """``msgid`` in ``lang``, or the English msgid when there is no translation."""
        return self._tables.get(lang, {}).get(msgid, msgid)

    def has(self, lang: str, msgid: str) -> bool:
        """Whether ``msgid`` has a translation in ``lang``."""
        return msgid in self._tables.get(lang, {})

    def locale(self, lang: str) -> Locale:
        """The Babel locale used for ``lang`` (Indian English or Hindi)."""
        return _LOCALES.get(lang, _LOCALES["en"])

    def number(self, lang: str, value: float) -> str:
        """``value`` with Indian grouping: 1,00,000."""
        return self._memoized(("n", lang, type(value), value), lambda: format_decimal(value, locale=self.locale(lang)))

    def percent(self, lang: str, value: float) -> str:
        """A fraction as a whole percentage: 0.5 → 50%."""
        return format_percent(value, locale=self.locale(lang))

    def money(self, lang: str, rupees: int) -> str:
        """Rupees as owners say them: ₹5,000, ₹40 lakh, ₹1.5 crore."""
        return self._memoized(("m", lang, type(rupees), rupees), lambda: self._money(lang, rupees))

    def _money(self, lang: str, rupees: int) -> str:
        loc = self.locale(lang)
        if rupees >= 10_000_000:
            amount = format_decimal(rupees / 10_000_000, format="#,##,##0.##", locale=loc)
            return "₹" + self.gettext(lang, CRORE_WORD).format(amount=amount)
        if rupees >= 100_000:
            amount = format_decimal(rupees / 100_000, format="#,##0.##", locale=loc)
            return "₹" + self.gettext(lang, LAKH_WORD).format(amount=amount)
        return "₹" + format_decimal(rupees, locale=loc)

    def money_exact(self, lang: str, rupees: int) -> str:
        """Rupees in full with Indian grouping: ₹1,00,000."""
        return "₹" + format_decimal(rupees, format="#,##,##0", locale=self.locale(lang))

    def date(self, lang: str, when: dt.datetime | dt.date) -> str:
        """A date as owners write it: 15 March 2026 / 15 मार्च 2026 (India time)."""
        if isinstance(when, dt.datetime):
            when = when.astimezone(IST).date()
        return format_date(when, "d MMMM y", locale=self.locale(lang))

    def datetime(self, lang: str, when: dt.datetime) -> str:
        """A date and time in India time: "15 March 2026, 6:00 pm" / "15 मार्च 2026, शाम 6:00 बजे"."""
        local = when.astimezone(IST)
        if lang != "hi":
            return format_datetime(local, "d MMMM y, h:mm a", tzinfo=IST, locale=self.locale(lang))
        # Hindi speakers say the part of the day, not am/pm.
        hour = local.hour
        period = "सुबह" if 4 <= hour < 12 else "दोपहर" if 12 <= hour < 16 else "शाम" if 16 <= hour < 20 else "रात"
        clock = f"{(hour % 12) or 12}:{local.minute:02d}"
        return f"{self.date(lang, local)}, {period} {clock} बजे"
