"""The dashboard as an aiohttp sub-application, mounted at ``/dashboard`` on the webhook server.

Sign-in: ``GET /dashboard/login?t=…`` (the one-time link ``/dashboard`` sends in chat) or
``POST /dashboard/telegram`` (the Mini App's signed init data) sets the session cookie —
HttpOnly, SameSite=Strict, Secure when served over https — and goes to the board.
Every POST carries the session's CSRF token and, when the browser sends an Origin, must come
from the dashboard's own origin. Another startup's lead is 404, by URL and by POST.
Pages are never cached and send no Referer to other sites (a sign-in link must not leak).
"""

from __future__ import annotations

import hmac
import logging
import re
from pathlib import Path
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from ..core.funnel import Filters
from ..core.messages import Outbound, Say, Toast
from ..core.session import Tr
from ..services.admin_dashboard import AdminDashboard, DateRange
from ..services.dashboard import NOTE_MAX, SESSION_SECONDS, BoardFilters, DashboardService, Viewer, parse_day
from . import admin as admin_views
from . import pages

log = logging.getLogger(__name__)

COOKIE = "saathi_dashboard"
MAX_BODY = 64 * 1024
_CHAT_TAGS = re.compile(r"<(/?)(b|i|u|s|code)>")
_ANY_TAG = re.compile(r"<[^>]*>")
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # no-referrer would make the browser send "Origin: null"
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
                               "form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'self' https://web.telegram.org",
}
_MINI_APP_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline' https://telegram.org; "
                 "connect-src 'self'; base-uri 'none'; frame-ancestors https://web.telegram.org https://*.telegram.org")


def chat_html(text: str) -> str:
    """A chat message's HTML (its user values already escaped) as page HTML: bold and italics stay, other tags go."""
    kept: list[str] = []

    def keep(match: re.Match) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _ANY_TAG.sub("", _CHAT_TAGS.sub(keep, text))
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


def plain(outputs: list[Outbound]) -> tuple[str, bool]:
    """What the chat would have said to the staff member, as plain text; whether it was a refusal."""
    for out in outputs:
        if isinstance(out, Toast):
            return out.text, True
    texts = [out.text for out in outputs if isinstance(out, Say)]
    return _ANY_TAG.sub("", texts[-1] if texts else "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), False


def see_other(location: str) -> web.Response:
    """A 303 to ``location`` (after a sign-in or a form)."""
    return web.Response(status=303, headers={**_HEADERS, "Location": location})


def _lang_of(request: web.Request) -> str:
    return "hi" if request.headers.get("Accept-Language", "").lower().startswith("hi") else "en"


class Dashboard:
    """The request handlers; see the module docstring."""

    def __init__(self, service: DashboardService):
        self.service = service
        self.texts = service.texts

    def tr(self, lang: str) -> Tr:
        return Tr(lang, self.texts)

    # ------------------------------------------------------------- plumbing
    def _page(self, body: str, status: int = 200) -> web.Response:
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)

    def _message(self, request: web.Request, msgid: str, status: int, viewer: Viewer | None = None) -> web.Response:
        t = self.tr(viewer.lang if viewer else _lang_of(request))
        return self._page(pages.message_page(t, t._(msgid), viewer), status)

    def _signed_in(self, token: str, location: str = f"{pages.PREFIX}/") -> web.Response:
        response = see_other(location)
        response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path=pages.PREFIX, httponly=True, samesite="Strict",
                            secure=self.service.secure)
        return response

    async def _viewer(self, request: web.Request) -> Viewer | None:
        return await self.service.viewer(request.cookies.get(COOKIE))

    def _origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # old browsers and same-origin form posts in some: the CSRF token still decides
        own = {f"{request.scheme}://{request.host}"}
        base = urlsplit(self.service.base_url)
        own.add(f"{base.scheme}://{base.netloc}")
        return origin in own

    async def _form(self, request: web.Request) -> dict[str, str] | None:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return None
        data = await request.post()
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def protected(self, handler: Callable[[web.Request, Viewer, dict[str, str]], Awaitable[web.StreamResponse]]):
        """A POST handler that runs only for a signed-in viewer whose form carries the session's CSRF token."""

        async def checked(request: web.Request) -> web.StreamResponse:
            viewer = await self._viewer(request)
            if viewer is None:
                return self._message(request, pages.SIGN_IN_FIRST, 401)
            form = await self._form(request)
            if form is None:
                return web.Response(status=413)
            if not self._origin_ok(request) or not hmac.compare_digest(form.get("csrf", "").encode(), viewer.csrf.encode()):
                log.warning("dashboard POST refused: cross-site or without its form token")
                return self._message(request, pages.FORM_OLD, 403, viewer)
            return await handler(request, viewer, form)

        return checked

    # ------------------------------------------------------------- signing in and out
    async def login(self, request: web.Request) -> web.StreamResponse:
        token = await self.service.open_link(request.query.get("t", ""))
        if token is None:
            return self._message(request, pages.LINK_SPENT, 403)
        return self._signed_in(token)

    async def telegram(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return web.Response(status=403)
        form = await self._form(request)
        token = await self.service.open_telegram((form or {}).get("init_data", ""))
        if token is None:
            return self._message(request, pages.MINI_APP_REFUSED, 403)
        return self._signed_in(token)

    async def mini_app(self, request: web.Request) -> web.StreamResponse:
        headers = {**_HEADERS, "Content-Security-Policy": _MINI_APP_CSP}
        return web.Response(text=pages.mini_app_page(self.tr(_lang_of(request))), content_type="text/html", charset="utf-8",
                            headers=headers)

    async def logout(self, request: web.Request, viewer: Viewer, form: dict[str, str]) -> web.StreamResponse:
        await self.service.sign_out(viewer)
        response = self._message(request, pages.SIGN_IN_FIRST, 200)
        response.del_cookie(COOKIE, path=pages.PREFIX)
        return response

    async def set_lang(self, request: web.Request, viewer: Viewer, form: dict[str, str]) -> web.StreamResponse:
        await self.service.set_lang(viewer, form.get("lang", ""))
        back = urlsplit(request.headers.get("Referer", ""))  # back to the page it was on: its path only, never another site
        path = back.path + (f"?{back.query}" if back.query else "")
        return see_other(path if back.path.startswith(pages.PREFIX + "/") and back.path != f"{pages.PREFIX}/login"
                         else f"{pages.PREFIX}/")

    # ------------------------------------------------------------- pages
    async def home(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._message(request, pages.SIGN_IN_FIRST, 401)
        if viewer.staff is None:
            return see_other(f"{pages.PREFIX}/admin")
        chosen, filters = self._board_filters(request)
        leads = await self.service.board(viewer, filters)
        overdue = await self.service.overdue(viewer)
        return self._page(pages.board_page(self.tr(viewer.lang), viewer, self.service.vocab, leads, chosen, overdue))

    @staticmethod
    def _board_filters(request: web.Request) -> tuple[dict[str, str | None], BoardFilters]:
        """The board's filters from the query: what the form shows again, and what the service reads."""
        q = request.query
        chosen = {name: (q.get(name) or None) for name in ("status", "state", "sector", "lang", "score", "from", "to")}
        chosen = {k: (v if v is None or len(v) <= 40 else None) for k, v in chosen.items()}
        if chosen["status"] not in (None, *pages.BOARD_STATUSES):
            chosen["status"] = None
        score = chosen["score"]
        if score is not None and not (score.isdigit() and len(score) <= 3):
            chosen["score"] = score = None
        offered_from, offered_to = parse_day(chosen["from"]), parse_day(chosen["to"])
        chosen["from"] = offered_from.isoformat() if offered_from else None
        chosen["to"] = offered_to.isoformat() if offered_to else None
        return chosen, BoardFilters(chosen["status"], chosen["state"], chosen["sector"], chosen["lang"],
                                    int(score) if score is not None else None, offered_from, offered_to)

    async def export(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._message(request, pages.SIGN_IN_FIRST, 401)
        _, filters = self._board_filters(request)
        body = await self.service.export_csv(viewer, filters)
        if body is None:
            return self._message(request, pages.NOT_FOUND, 404, viewer)
        name = f"leads-{self.service.today().isoformat()}.csv"
        return web.Response(body=body.encode("utf-8"), headers={
            **_HEADERS, "Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{name}"'})

    async def note(self, request: web.Request, viewer: Viewer, form: dict[str, str]) -> web.StreamResponse:
        lead_id = self._lead_id(request)
        done = await self.service.set_note(viewer, lead_id, form.get("note", "")) if lead_id is not None else None
        if done is None:
            return self._message(request, pages.NOT_FOUND, 404, viewer)
        t = self.tr(viewer.lang)
        if not done:
            return await self._lead_page(request, viewer, t._(pages.NOTE_TOO_LONG, count=t.num(NOTE_MAX)), True)
        return await self._lead_page(request, viewer, t._(pages.NOTE_SAVED))

    async def follow_up(self, request: web.Request, viewer: Viewer, form: dict[str, str]) -> web.StreamResponse:
        lead_id = self._lead_id(request)
        done = await self.service.set_follow_up(viewer, lead_id, form.get("day", "")) if lead_id is not None else None
        if done is None:
            return self._message(request, pages.NOT_FOUND, 404, viewer)
        t = self.tr(viewer.lang)
        if not done:
            return await self._lead_page(request, viewer, t._(pages.FOLLOW_UP_BAD), True)
        return await self._lead_page(request, viewer, t._(pages.FOLLOW_UP_SAVED))

    def _lead_id(self, request: web.Request) -> int | None:
        raw = request.match_info.get("lead_id", "")
        return int(raw) if raw.isdigit() and len(raw) <= 12 else None

    async def lead(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._message(request, pages.SIGN_IN_FIRST, 401)
        return await self._lead_page(request, viewer)

    async def _lead_page(self, request: web.Request, viewer: Viewer, notice: str = "", refused: bool = False) -> web.StreamResponse:
        lead_id = self._lead_id(request)
        page = await self.service.lead(viewer, lead_id) if lead_id is not None else None
        if page is None:
            return self._message(request, pages.NOT_FOUND, 404, viewer)
        t = self.tr(viewer.lang)
        return self._page(pages.lead_page(t, viewer, page, chat_html(page.card), self.service.reasons, notice, refused,
                                          today=self.service.today()))

    async def move(self, request: web.Request, viewer: Viewer, form: dict[str, str]) -> web.StreamResponse:
        lead_id = self._lead_id(request)
        action = form.get("action", "")
        if lead_id is None or not action or len(action) > 40:
            return self._message(request, pages.NOT_FOUND, 404, viewer)
        outputs = await self.service.act(viewer, lead_id, action)  # the chat's own call: same rules, same messages
        if outputs is None:
            return self._message(request, pages.NOT_FOUND, 404, viewer)
        notice, refused = plain(outputs)
        return await self._lead_page(request, viewer, notice, refused)

    async def font(self, request: web.Request) -> web.StreamResponse:
        """The bot's own Noto Sans Devanagari (OFL), for a phone or a browser without a Hindi font."""
        name = FONT_FILES.get(request.match_info["name"])
        if name is None:
            return web.Response(status=404)
        return web.FileResponse(FONTS / name, headers={"Cache-Control": "public, max-age=604800", "Content-Type": "font/woff2"})

    async def admin(self, request: web.Request) -> web.StreamResponse:
        viewer = await self._viewer(request)
        if viewer is None:
            return self._message(request, pages.SIGN_IN_FIRST, 401)
        if not viewer.admin:
            return self._message(request, pages.NOT_FOUND, 404, viewer)
        q, vocab = request.query, self.service.vocab
        dates = DateRange.parse(q.get("from"), q.get("to"))
        filters = Filters(state=q.get("state") if q.get("state") in vocab.states else None,
                          sector=q.get("sector") if q.get("sector") in vocab.sectors else None,
                          lang=q.get("lang") if q.get("lang") in ("hi", "en") else None, since=dates.since, until=dates.until)
        funnel = await self.service.funnel(filters)
        broadcasts = await self.service.broadcasts()
        report = await AdminDashboard.of(self.service.stats).report(filters, dates)  # bot/web/admin.py draws it
        t = self.tr(viewer.lang)
        return self._page(pages.admin_page(t, viewer, vocab, funnel, filters, broadcasts, vocab.modules,
                                           admin_views.date_fields(t, dates), admin_views.sections(t, report)))


FONTS = Path(__file__).resolve().parent.parent / "fonts"
# WOFF2 (70 KB each; the TTFs Pillow draws with are 230 KB): the same glyphs and shaping, compressed
FONT_FILES = {"devanagari.woff2": "NotoSansDevanagari-Regular.woff2", "devanagari-bold.woff2": "NotoSansDevanagari-Bold.woff2"}


def dashboard_app(service: DashboardService) -> web.Application:
    """The sub-application to mount at ``/dashboard`` (``mount``)."""
    d = Dashboard(service)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/", d.home)
    app.router.add_get("/login", d.login)
    app.router.add_post("/telegram", d.telegram)
    app.router.add_get("/app", d.mini_app)
    app.router.add_get("/lead/{lead_id}", d.lead)
    app.router.add_post("/lead/{lead_id}", d.protected(d.move))
    app.router.add_post("/lead/{lead_id}/note", d.protected(d.note))
    app.router.add_post("/lead/{lead_id}/follow-up", d.protected(d.follow_up))
    app.router.add_get("/export.csv", d.export)
    app.router.add_get("/admin", d.admin)
    app.router.add_get("/font/{name}", d.font)
    app.router.add_post("/lang", d.protected(d.set_lang))
    app.router.add_post("/logout", d.protected(d.logout))
    return app


def mount(root: web.Application, service: DashboardService) -> None:
    """Serve the dashboard at ``/dashboard`` on ``root`` (the webhook server's app)."""

    async def to_board(_: web.Request) -> web.StreamResponse:
        return see_other(f"{pages.PREFIX}/")

    root.router.add_get(pages.PREFIX, to_board)
    root.add_subapp(pages.PREFIX, dashboard_app(service))


async def serve(service: DashboardService, listen: str, port: int) -> web.AppRunner:
    """The dashboard on a server of its own (no webhook server runs); ``cleanup()`` the runner to stop."""
    root = web.Application()
    mount(root, service)
    runner = web.AppRunner(root, access_log=None)  # a request line may hold a sign-in token
    await runner.setup()
    await web.TCPSite(runner, listen, port).start()
    log.info("dashboard on %s:%d%s/", listen, port, pages.PREFIX)
    return runner


__all__ = ["dashboard_app", "mount", "serve"]
