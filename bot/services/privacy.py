"""Owners' rights over their data (India's DPDP Act 2023): ``/my_data`` shows everything stored.

``/delete_my_data`` is part of the owner conversation (it asks for confirmation first); the
erasing itself happens in the session store, and features that hold copies (leads, outbox) are
told through the ``delete_my_data`` event.
"""

from __future__ import annotations

import datetime as dt

from ..core.engine import Engine
from ..core.messages import Inbound, InKind, Say
from ..core.leads import OWNER_STATUS
from ..core.session import N_, Session, TurnContext
from ..i18n import Catalogs
from ..storage.privacy import SqlitePrivacyRecords
from .conversation import Reply
from .dispatch import Who

TITLE = N_("Everything I have stored about you")
NOTHING = N_("I have nothing stored about you.")
CONSENT_LINE = N_("Consent: given on {date} (version {version})")
NO_CONSENT = N_("Consent: not given")
SEEN_LINE = N_("First message: {first}. Last message: {last}.")
MODULE_LINE = N_("{module}: {attempts} quiz attempt(s), best {best}/{total}")
LEAD_LINE = N_("Your profile was shared on {date} with a partner startup of the program: {startup}. Now: {status}.")
LEAD_WAITING = N_("Your profile is ready for a partner startup since {date}: {status}.")
REFERRAL_LINE = N_("You came through a partner's link (code {code}).")
ERASE_HINT = N_("To erase all of it, send /delete_my_data.")


class PrivacyRole:
    """Answers ``/my_data`` for anyone, from the database, in their language."""

    def __init__(self, records: SqlitePrivacyRecords, engine: Engine, texts: Catalogs):
        self.records, self.engine, self.texts = records, engine, texts

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        if inbound.kind is not InKind.COMMAND or inbound.data != "my_data":
            return None
        found = await self.records.stored_about(who.key)
        lang = found.lang if found else ("en" if (who.lang_hint or "").startswith("en") else "hi")
        if found is None:
            return Reply([Say(self.texts.gettext(lang, NOTHING))], lang, 0, [])
        t = TurnContext(Session(lang=lang, profile=found.profile), self.texts)
        lines = [self.engine.summary_text(t, t._(TITLE)), ""]
        if found.consent == "given" and found.consent_at:
            lines.append(t._(CONSENT_LINE, date=self._date(lang, found.consent_at), version=found.consent_version))
        else:
            lines.append(t._(NO_CONSENT))
        if found.referral_code:
            lines.append(t._(REFERRAL_LINE, code=t.esc(found.referral_code)))
        lines.append(t._(SEEN_LINE, first=self._date(lang, found.first_seen_at), last=self._date(lang, found.last_seen_at)))
        for module_id, attempts, best in found.progress:
            module = self.engine.content.module(module_id)
            if module is not None:
                lines.append("• " + t._(MODULE_LINE, module=t._(module.title), attempts=t.num(attempts),
                                         best=t.num(best), total=t.num(len(module.quiz))))
        if found.lead is not None:
            status, created_at, startup = found.lead
            words = t._(OWNER_STATUS.get(status, OWNER_STATUS["offered"]), startup=t.esc(startup or "—"))
            if startup and status not in ("unassigned", "offered"):
                lines.append(t._(LEAD_LINE, date=self._date(lang, created_at), startup=t.esc(startup), status=words))
            else:  # offered, not yet taken up: which startup is weighing it is not the owner's worry
                lines.append(t._(LEAD_WAITING, date=self._date(lang, created_at), status=words))
        lines += ["", t._(ERASE_HINT)]
        return Reply([Say("\n".join(lines))], lang, found.user_id, [])

    def _date(self, lang: str, seconds: int) -> str:
        return self.texts.date(lang, dt.datetime.fromtimestamp(seconds, dt.timezone.utc))
