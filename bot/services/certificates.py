"""Certificates: earned by passing the required modules, checkable by anyone, revoked by erasure.

The certificate is an image in the owner's language with their name and business, the modules
passed, the date and a verification code (also as a QR code). It is issued once, in the same
transaction as the message that sends it; a crash before that is caught up by the periodic
``catch_up`` (owners who passed and have none). ``/verify CODE`` (anyone, in the bot) and
``saathi verify CODE`` say whose it is and what it covers; after the owner's erasure the code
says "withdrawn" and names no one. ``/certificate`` sends an owner theirs again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from dataclasses import dataclass

import segno

from ..core.content import Content
from ..core.messages import Inbound, InKind, Photo, Say
from ..core.session import N_, Tr
from ..i18n import Catalogs
from ..pictures import ACCENT, MUTED, Canvas
from ..storage.certificates import Certificate, Holder, SqliteCertificates
from ..storage.db import Database
from .clock import Clock
from .conversation import Reply
from .dispatch import Who
from .replies import ReplyQueue

log = logging.getLogger(__name__)

# Crockford's base32 without the letters people misread (I, L, O, U): ten of them are 50 bits.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CATCH_UP_WINDOW = 24 * 3600  # seconds: owners seen this recently get a certificate a crash left unissued
VERIFY_START = "verify_"  # t.me/<bot>?start=verify_<code>: the QR code opens the bot and checks the code
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})

HEADING = N_("Certificate of export training")
CERTIFIES = N_("This certifies that")
OF_BUSINESS = N_("of {business}")
HAS_PASSED = N_("has passed these modules of the Export Saathi training:")
ISSUED = N_("Issued on {date}")
CODE_LINE = N_("Verification code: {code}")
CHECK_LINE = N_("To check it, send /verify {code} to the Export Saathi bot.")
CAPTION = N_("🎓 Your certificate! You passed the modules an exporter needs first. Show it to buyers and partners: anyone can check it by sending /verify {code} to this bot.")
VALID = N_("✅ Certificate {code} is valid.\nIssued to {owner} ({business}) on {date}.\nModules passed: {modules}.")
WITHDRAWN = N_("Certificate {code} was withdrawn on {date}. It is no longer valid.")
UNKNOWN = N_("No certificate has the code {code}. Check the letters and digits on the certificate and send /verify with the code again.")
VERIFY_HOW = N_("To check a certificate, send /verify and its code, for example: /verify {example}")
NOT_YET = N_("You get your certificate when you pass these modules: {modules}. Send /learn to continue.")
RESEND = N_("Here is your certificate again.")


def new_code() -> str:
    """A fresh verification code, e.g. ``7KQ2M-9XD4A``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_code(text: str) -> str:
    """What the owner typed, as stored: capitals, misread letters mapped, one dash in the middle."""
    raw = "".join(ch for ch in text.upper().translate(_READ_AS) if ch in ALPHABET)
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else raw


@dataclass(frozen=True)
class Drawn:
    """A certificate's picture and the caption that goes with it."""

    png: bytes
    caption: str


class CertificateService:
    """Issues certificates, draws them, and answers checks."""

    def __init__(self, db: Database, content: Content, texts: Catalogs, clock: Clock, replies: ReplyQueue | None,
                 bot_username: str = ""):
        self.repo = SqliteCertificates(db)
        self.content, self.texts, self.clock, self.replies = content, texts, clock, replies
        self.bot_username = bot_username

    # ------------------------------------------------------------------ issuing
    async def on_events(self, user_id: int, key, events) -> None:
        """After a committed turn: issue the certificate earned, or a new one for a changed name.

        A failure here is logged, never shown to the owner (their answer is saved); the periodic
        ``catch_up`` issues it later.
        """
        renamed = any(e.kind == "profile_changed" and e.data.get("field") in ("owner_name", "business_name") for e in events)
        try:
            if any(e.kind == "required_modules_passed" for e in events):
                await self.issue(user_id)
            elif renamed and await self.repo.of_user(user_id) is not None:
                await self.issue(user_id, reissue=True)
        except Exception:  # noqa: BLE001 - caught up by the periodic catch_up
            log.exception("could not issue the certificate of owner %s now; the catch-up tries again", user_id)

    async def issue(self, user_id: int, *, reissue: bool = False) -> Certificate | None:
        """The owner's certificate, issued and sent now if they earned it and have none (or, with
        ``reissue``, a new one with their current name in place of the old)."""
        existing = await self.repo.of_user(user_id)
        if existing is not None and not reissue:
            return existing
        holder = await self.repo.holder(user_id)
        required = self.content.required_modules
        if holder is None or not required or not set(required) <= set(holder.passed):
            return None
        now = int(self.clock.now())
        modules = tuple(m.id for m in self.content.modules if m.id in holder.passed)
        certificate = Certificate(new_code(), holder.lang, holder.owner_name, holder.business_name, modules, now)
        drawn = await asyncio.to_thread(self.draw, certificate)
        stored, rows = await self.repo.issue(certificate, holder, [Photo(drawn.png, drawn.caption, "certificate.png")], now,
                                             replace_old=reissue)
        if rows and self.replies is not None:
            self.replies.send_soon(rows)
        if rows:
            log.info("certificate issued to owner %s", user_id)
        return stored

    async def catch_up(self) -> int:
        """Issue the certificates a crash left unissued; returns how many.

        Only for owners seen in the last day: a crash is recent, and an upgrade must not send a
        certificate out of the blue to everyone who passed long ago (they get it with /certificate).
        One owner whose certificate fails does not hold up the others.
        """
        issued = 0
        since = int(self.clock.now()) - CATCH_UP_WINDOW
        for user_id in await self.repo.owners_due(self.content.required_modules, since):
            try:
                if await self.issue(user_id) is not None:
                    issued += 1
            except Exception:  # noqa: BLE001 - the next run tries again
                log.exception("could not issue the certificate of owner %s", user_id)
        return issued

    # ------------------------------------------------------------------ drawing
    def _module_titles(self, lang: str, modules) -> list[str]:
        titles = []
        for module_id in modules:
            module = self.content.module(module_id)
            if module is not None:
                titles.append(self.texts.gettext(lang, module.title))
        return titles

    def draw(self, c: Certificate) -> Drawn:
        """The certificate as a PNG (1200×850) in its language, with a QR code of the code."""
        words = Tr(c.lang, self.texts)
        lang, tr, when = c.lang, words._, words.date(c.issued_at)
        W, H = 1200, 850
        canvas = Canvas.new(W, H)
        draw = canvas.draw
        draw.rectangle((18, 18, W - 18, H - 18), outline=ACCENT, width=6)
        draw.rectangle((34, 34, W - 34, H - 34), outline=(196, 170, 96), width=2)
        canvas.text(W / 2, 112, "Export Saathi", 30, bold=True, fill=ACCENT, align="center")
        canvas.text(W / 2, 178, tr(HEADING), 48, bold=True, align="center")
        canvas.text(W / 2, 250, tr(CERTIFIES), 26, fill=MUTED, align="center")
        # The name as large as fits on one line (down to 28 px), then wrapped; the business (at most
        # two lines) below; the modules fill what is left above the code block, which never moves.
        name, size = c.owner_name.strip() or "—", 50
        while size > 28 and canvas.width_of(name, size, bold=True) > W - 180:
            size -= 2
        y = canvas.paragraph(W / 2, 318, name, size, W - 180, bold=True, align="center", leading=1.2) - size * 1.2 + 54
        if c.business_name:
            business = canvas.wrap(tr(OF_BUSINESS, business=c.business_name), 28, W - 200)
            if len(business) > 2:
                business = [*business[:1], business[1][: max(1, len(business[1]) - 1)] + "…"]
            for line_text in business[:2]:
                canvas.text(W / 2, y, line_text, 28, align="center")
                y += 40
        y = canvas.paragraph(W / 2, y + 14, tr(HAS_PASSED), 24, W - 200, fill=MUTED, align="center")
        titles = self._module_titles(lang, c.modules)
        columns = 1 if len(titles) <= 4 else 2
        per_column = max(1, -(-len(titles) // columns))
        room = (H - 200) - (y + 6)  # down to just above "Issued on"
        size = 26 if len(titles) <= 6 else 22
        while size > 16 and per_column * size * 1.45 > room:
            size -= 1
        line = min(size * 1.5, room / per_column)
        left = 150 if columns == 2 else W / 2 - 230
        for index, title in enumerate(titles):
            col, row = divmod(index, per_column)
            canvas.text(left + col * 470, y + 6 + (row + 0.8) * line, "• " + title, size)
        canvas.text(90, H - 150, tr(ISSUED, date=when), 26)
        canvas.text(90, H - 105, tr(CODE_LINE, code=c.code), 28, bold=True, fill=ACCENT)
        canvas.paragraph(90, H - 62, tr(CHECK_LINE, code=c.code), 20, W - 400, fill=MUTED)
        code = c.code.replace("-", "")
        link = f"https://t.me/{self.bot_username}?start={VERIFY_START}{code}" if self.bot_username else f"EXPORT SAATHI {c.code}"
        qr = segno.make(link, error="m")  # scanned, it opens the bot, which checks the code
        buffer = io.BytesIO()
        qr.save(buffer, kind="png", scale=5, border=2)
        from PIL import Image

        picture = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
        canvas.image.paste(picture, (W - 70 - picture.width, H - 70 - picture.height))
        return Drawn(canvas.png(), tr(CAPTION, code=c.code))

    # ------------------------------------------------------------------ checking
    async def verify(self, text: str, lang: str) -> str:
        """What ``/verify text`` answers, in ``lang``."""
        t = Tr(lang, self.texts)
        code = normalise_code(text)
        if not code:
            return t._(VERIFY_HOW, example=new_code())
        found = await self.repo.find(code)
        if found is None:
            return t._(UNKNOWN, code=t.esc(text.strip()[:40]))
        if found.revoked_at is not None:
            return t._(WITHDRAWN, code=code, date=t.date(found.revoked_at))
        return t._(VALID, code=code, owner=t.esc(found.owner_name), business=t.esc(found.business_name),
                   date=t.date(found.issued_at),
                   modules=", ".join(self._module_titles(lang, found.modules)))


class CertificateRole:
    """``/verify CODE`` for anyone; ``/certificate`` for an owner: theirs again, or what earns it."""

    def __init__(self, service: CertificateService):
        self.service = service

    async def handle(self, who: Who, inbound: Inbound) -> Reply | None:
        if inbound.kind is InKind.COMMAND and inbound.data == "start" and inbound.text.startswith(VERIFY_START):
            inbound = Inbound(InKind.COMMAND, text=inbound.text[len(VERIFY_START):], data="verify")  # the QR code's link
        if inbound.kind is not InKind.COMMAND or inbound.data not in ("verify", "certificate"):
            return None
        known = await self.service.repo.user(who.key)
        user_id, lang = known if known else (0, "en" if (who.lang_hint or "").startswith("en") else "hi")
        if inbound.data == "verify":
            return Reply([Say(await self.service.verify(inbound.text, lang))], lang, user_id, [])
        return await self._certificate(user_id, lang)

    async def _certificate(self, user_id: int, lang: str) -> Reply:
        service = self.service
        t = Tr(lang, service.texts)
        certificate = await service.repo.of_user(user_id) if user_id else None
        if certificate is None:
            titles = service._module_titles(lang, service.content.required_modules)
            return Reply([Say(t._(NOT_YET, modules=", ".join(titles)))], lang, user_id or 0, [])
        drawn = await asyncio.to_thread(service.draw, certificate)
        return Reply([Say(t._(RESEND)), Photo(drawn.png, drawn.caption, "certificate.png")], lang, user_id, [])


__all__ = ["CertificateRole", "CertificateService", "Holder", "new_code", "normalise_code"]
