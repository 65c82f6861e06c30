"""Owners' rights over their data (India's DPDP Act 2023): ``/my_data`` shows everything stored.

``/delete_my_data`` is part of the owner conversation (it asks for confirmation first); the
erasing itself happens in the session store, and features that hold copies (leads, outbox) are
told through the ``delete_my_data`` event.
"""

from __future__ import annotations


from ..core.engine import Engine
from ..core.messages import FOREIGN_CONTACT, Inbound, InKind, Say
from ..core.leads import OWNER_STATUS
from ..core.session import N_, Session, Tr, TurnContext
from ..i18n import Catalogs
from ..storage.privacy import SqlitePrivacyRecords, StaffLink, StoredAbout
from .conversation import ConversationService, Reply
from .dispatch import Who

TITLE = N_("Everything I have stored about you")
NOTHING = N_("I have nothing stored about you.")
CONSENT_LINE = N_("Consent: given on {date} (version {version})")
NO_CONSENT = N_("Consent: not given")
SEEN_LINE = N_("First message: {first}. Last message: {last}.")
MODULE_LINE = N_("{module}: {attempts} quiz attempt(s), best {best}/{total}; {answers} answer(s) stored")
LEAD_LINE = N_("Your profile was shared on {date} with a partner startup of the program: {startup}. Now: {status}.")
LEAD_WAITING = N_("Your profile is ready for a partner startup since {date}: {status}.")
REFERRAL_LINE = N_("You came through a partner's link (code {code}).")
ERASE_HINT = N_("To erase all of it, send /delete_my_data.")
MESSAGES_LINE = N_("Messages I sent you (reminders, notices, announcements): {count}, the last on {date}.")
NO_MESSAGES = N_("Messages I sent you (reminders, notices, announcements): none.")
REMINDERS_OFF = N_("Reminders: off, as you asked. /start turns them on again.")
BROADCASTS_OFF = N_("Announcements: off, as you asked. /start_broadcasts turns them on again.")
CERTIFICATE_LINE = N_("Your certificate: code {code}, issued on {date}.")
# A startup's staff chat
STAFF_TITLE = N_("What I have stored about this chat")
STAFF_LINE = N_("This chat is linked to the partner startup {startup} since {date}, in {language}.")
STAFF_WHAT = N_("Lead cards for {startup} come to this chat, and I keep a record of each message sent here.")
STAFF_ERASE_HINT = N_("To unlink this chat from the startup, send /delete_my_data.")
LANGUAGE_NAMES = {"hi": "हिन्दी", "en": "English"}
FOREIGN_CONTACT_REFUSED = N_("That contact card is someone else's, so I have not kept it.")


class PrivacyRole:
    """Answers ``/my_data`` for anyone, from the database, in their language."""

    def __init__(self, records: SqlitePrivacyRecords, engine: Engine, texts: Catalogs):
        self.records, self.engine, self.texts = records, engine, texts

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        if inbound.kind is not InKind.COMMAND or inbound.data != "my_data":
            return None
        found = await self.records.stored_about(who.key)
        staff = await self.records.staff_link(who.key)
        lang = found.lang if found else staff.lang if staff else ("en" if (who.lang_hint or "").startswith("en") else "hi")
        if found is None and staff is None:
            return Reply([Say(self.texts.gettext(lang, NOTHING))], lang, 0, [])
        outputs = []
        if staff is not None:  # a partner startup's staff chat: what is kept about the link
            outputs.append(Say(self._staff_text(staff)))
        if found is not None:
            outputs.append(Say(self._owner_text(found)))
        return Reply(outputs, lang, found.user_id if found else 0, [])

    def _staff_text(self, staff: StaffLink) -> str:
        t = Tr(staff.lang, self.texts)
        startup = t.esc(staff.startup_name)
        return "\n".join([
            f"<b>{t._(STAFF_TITLE)}</b>", "",
            t._(STAFF_LINE, startup=startup, date=t.date(staff.linked_at),
                language=LANGUAGE_NAMES.get(staff.lang, staff.lang)),
            t._(STAFF_WHAT, startup=startup), "", t._(STAFF_ERASE_HINT),
        ])

    def _owner_text(self, found: StoredAbout) -> str:
        lang = found.lang
        t = TurnContext(Session(lang=lang, profile=found.profile), self.texts)
        lines = [self.engine.summary_text(t, t._(TITLE)), ""]
        if found.consent == "given" and found.consent_at:
            lines.append(t._(CONSENT_LINE, date=t.date(found.consent_at), version=found.consent_version))
        else:
            lines.append(t._(NO_CONSENT))
        if found.referral_code:
            lines.append(t._(REFERRAL_LINE, code=t.esc(found.referral_code)))
        lines.append(t._(SEEN_LINE, first=t.date(found.first_seen_at), last=t.date(found.last_seen_at)))
        for module_id, attempts, best in found.progress:
            module = self.engine.content.module(module_id)
            if module is not None:
                lines.append("• " + t._(MODULE_LINE, module=t._(module.title), attempts=t.num(attempts), best=t.num(best),
                                         total=t.num(len(module.quiz)), answers=t.num(found.answers.get(module_id, 0))))
        if found.lead is not None:
            status, created_at, startup = found.lead
            words = t._(OWNER_STATUS.get(status, OWNER_STATUS["offered"]), startup=t.esc(startup or "—"))
            if startup and status not in ("unassigned", "offered"):
                lines.append(t._(LEAD_LINE, date=t.date(created_at), startup=t.esc(startup), status=words))
            else:  # offered, not yet taken up: which startup is weighing it is not the owner's worry
                lines.append(t._(LEAD_WAITING, date=t.date(created_at), status=words))
        if found.certificate is not None:
            code, issued_at = found.certificate
            lines.append(t._(CERTIFICATE_LINE, code=t.esc(code), date=t.date(issued_at)))
        count, last = found.messages
        if count and last:
            lines.append(t._(MESSAGES_LINE, count=t.num(count), date=t.date(last)))
        else:
            lines.append(t._(NO_MESSAGES))
        if found.reminders_off:
            lines.append(t._(REMINDERS_OFF))
        if found.broadcasts_off:
            lines.append(t._(BROADCASTS_OFF))
        lines += ["", t._(ERASE_HINT)]
        return "\n".join(lines)

class ForeignContactRole:
    """A contact card that is not the sender's own: refused in their language, and nothing kept.

    The owner hears why, then their current question again (the phone question offers their own
    number). Someone the bot has never met is only told; no row is created for them.
    """

    def __init__(self, records: SqlitePrivacyRecords, conversations: ConversationService, texts: Catalogs):
        self.records, self.conversations, self.texts = records, conversations, texts

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        if inbound.kind is not InKind.MEDIA or inbound.data != FOREIGN_CONTACT:
            return None
        found = await self.records.stored_about(who.key)
        if found is None:
            lang = "en" if (who.lang_hint or "").startswith("en") else "hi"
            return Reply([Say(self.texts.gettext(lang, FOREIGN_CONTACT_REFUSED))], lang, 0, [])
        question, lang = await self.conversations.current_question(who.key)
        return Reply([Say(self.texts.gettext(lang, FOREIGN_CONTACT_REFUSED)), *question], lang, found.user_id, [])
