"""The dashboard's pages as HTML: mobile first, a little inline CSS, no script, words from the catalogs.

Everything that comes from a person (business names, notes) is escaped here; the lead card is
the chat's own card (``LeadService.view``), whose chat HTML already escapes what people typed.
The funnel is an inline SVG, so the browser shapes Devanagari labels itself.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from ..core.funnel import Filters, Stage, describe_filters, path_of
from ..core.leads import ACTION_LABELS, FILTER_LABELS, LANGUAGE_NAMES, STATUS_LABELS, TIMELINE_LABELS, UNDO_LABEL
from ..core.segments import Vocabulary
from ..core.session import N_, P_, Tr

PREFIX = "/dashboard"
BOARD_STATUSES = ("offered", "accepted", "contacted", "listed", "first_order", "lost")  # the board's columns, in order

TITLE = N_("Export Saathi dashboard")
BOARD_TITLE = N_("Leads of {startup}")
FILTER_STATUS = N_("Status")
FILTER_STATE = N_("State")
FILTER_SECTOR = N_("Sector")
FILTER_LANGUAGE = N_("Language")
FILTER_ANY = N_("All")
FILTER_SHOW = N_("Show")
BOARD_EMPTY = N_("No leads here yet.")
BOARD_COUNT = P_("{count} lead", "{count} leads")
LEAD_BACK = N_("← All leads")
LEAD_TIMELINE = N_("What happened so far")
LEAD_DECLINE = N_("Decline: why?")
LEAD_LOST = N_("Lost: what happened?")
LEAD_NO_MOVES = N_("No more steps for this lead.")
FILTER_SCORE = N_("Score at least")
FILTER_FROM = N_("Offered from")
FILTER_TO = N_("Offered until")
EXPORT_LINK = N_("Download these leads (CSV)")
OVERDUE_TITLE = N_("Follow-ups overdue")
OVERDUE_ITEM = N_("Follow-up was due {date}")
FOLLOW_UP_ON = N_("Follow-up: {date}")
NOTE_TITLE = N_("Note")
NOTE_HINT = N_("Only your startup sees this note (up to {count} characters).")
NOTE_BY = N_("Written by {who}, {when}")
NOTE_SAVE = N_("Save note")
NOTE_SAVED = N_("Note saved.")
NOTE_TOO_LONG = N_("The note is too long: please keep it to {count} characters at most.")
FOLLOW_UP_TITLE = N_("Follow-up date")
FOLLOW_UP_HINT = N_("On this day the bot reminds your team in chat.")
FOLLOW_UP_SET_BY = N_("Set by {who}, {when}")
FOLLOW_UP_SAVE = N_("Save date")
FOLLOW_UP_CLEAR = N_("Remove date")
FOLLOW_UP_SAVED = N_("Follow-up date saved.")
FOLLOW_UP_BAD = N_("Please choose a date from today to one year ahead.")
ADMIN_TITLE = N_("Funnel")
ADMIN_LINK = N_("Funnel and broadcasts")
BOARD_LINK = N_("My startup's leads")
FUNNEL_AXIS = N_("Owners")
BROADCASTS = N_("Broadcasts")
BROADCAST_MODULE = N_("Module: {module}")
BROADCAST_NONE = N_("No broadcasts yet.")
COUNT_RECIPIENTS = N_("Recipients")
COUNT_SENT = N_("Sent")
COUNT_DELIVERED = N_("Delivered")
COUNT_READ = N_("Read")
COUNT_FAILED = N_("Failed")
COUNT_BLOCKED = N_("Blocked")
SIGN_OUT = N_("Sign out")
SIGN_IN_FIRST = N_("Please sign in: send /dashboard in your chat with the bot, then open the link it sends.")
LINK_SPENT = N_("This sign-in link does not work any more: it was used already or is older than 15 minutes. "
                "Send /dashboard in the chat for a new one.")
NOT_FOUND = N_("This page does not exist, or it is not yours.")
FORM_OLD = N_("This form is out of date. Go back, reload the page and try again.")
MINI_APP_WAIT = N_("Opening your dashboard…")
MINI_APP_REFUSED = N_("Telegram could not confirm who you are. Close this and open the dashboard again.")

CSS = """
@font-face{font-family:"Saathi Devanagari";src:url(/dashboard/font/devanagari.woff2) format("woff2");unicode-range:U+0900-097F,U+1CD0-1CFF,U+200C-200D,U+A8E0-A8FF;font-weight:400;font-display:swap}
@font-face{font-family:"Saathi Devanagari";src:url(/dashboard/font/devanagari-bold.woff2) format("woff2");unicode-range:U+0900-097F,U+1CD0-1CFF,U+200C-200D,U+A8E0-A8FF;font-weight:700;font-display:swap}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 "Saathi Devanagari",system-ui,-apple-system,"Noto Sans Devanagari",sans-serif;
color:#1d2327;background:#f4f6f7}header{background:#1f6f8b;color:#fff;padding:10px 14px;display:flex;flex-wrap:wrap;
gap:6px 12px;align-items:center}header a{color:#fff;font-weight:600;text-decoration:none}header .sp{flex:1}
header form{display:inline;margin:0}header button{background:none;border:1px solid #ffffff88;color:#fff;border-radius:6px;
padding:3px 8px;font:inherit;font-size:14px}main{max-width:760px;margin:0 auto;padding:12px}h1{font-size:21px;margin:6px 0 12px}
h2{font-size:17px;margin:18px 0 8px}.filters{display:grid;grid-template-columns:1fr 1fr;gap:8px;background:#fff;padding:10px;
border-radius:10px}.filters label{font-size:13px;color:#5f6b72;display:flex;flex-direction:column}.filters select{font:inherit;
padding:6px;border:1px solid #c9d1d6;border-radius:6px;background:#fff}.filters button{grid-column:1/-1}
.btn,button.act{display:inline-block;font:inherit;font-weight:600;border:0;border-radius:8px;padding:10px 14px;background:#1f6f8b;
color:#fff;text-decoration:none;min-height:44px}.btn.alt,button.alt{background:#e6eef1;color:#1f4a5a}ul.leads{list-style:none;
padding:0;margin:0}ul.leads li{margin:0 0 8px}ul.leads a{display:block;background:#fff;border-radius:10px;padding:10px 12px;
color:inherit;text-decoration:none;border-left:4px solid #4fa3c7}ul.leads b{display:block}.muted{color:#5f6b72;font-size:14px}
.card{background:#fff;border-radius:10px;padding:12px;white-space:pre-line;overflow-wrap:anywhere}.moves{display:flex;
flex-wrap:wrap;gap:8px;margin:12px 0}.moves form{margin:0}details{background:#fff;border-radius:10px;padding:8px 12px;margin:8px 0}
summary{font-weight:600;cursor:pointer;min-height:32px}details .moves{margin:8px 0 4px}.notice{background:#e7f5ec;
border-left:4px solid #2e8b57;padding:10px 12px;border-radius:8px;white-space:pre-line;margin:0 0 12px}.refused{background:#fdf0e6;
border-left-color:#d9822b}ol.timeline{background:#fff;border-radius:10px;padding:10px 12px 10px 32px;margin:0}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:10px;font-size:14px}th,td{padding:6px;text-align:right;
border-bottom:1px solid #eef1f3}th:first-child,td:first-child{text-align:left}.scroll{overflow-x:auto}svg{background:#fff;
border-radius:10px;width:100%;height:auto}.page{background:#fff;border-radius:10px;padding:16px}
.filters input{font:inherit;padding:6px;border:1px solid #c9d1d6;border-radius:6px;background:#fff;min-width:0;width:100%}
.export{margin:8px 0 0}.overdue{background:#fdf0e6;border-radius:10px;padding:8px 12px;margin:0 0 12px}
.overdue h2{margin:4px 0 8px;color:#8a4b12}ul.leads.late a{border-left-color:#d9822b}ul.leads a span{display:block}.due{color:#8a4b12;font-weight:600}
.box{background:#fff;border-radius:10px;padding:12px;margin:12px 0}.box h2{margin:0 0 6px}.box form{margin:0;display:flex;
flex-direction:column;gap:8px}.box textarea,.box input[type=date]{font:inherit;padding:8px;border:1px solid #c9d1d6;
border-radius:6px;width:100%}.box .row{display:flex;flex-wrap:wrap;gap:8px}.saved{white-space:pre-wrap;overflow-wrap:anywhere;
background:#f4f6f7;border-radius:8px;padding:8px;margin:0 0 6px}
"""


def esc(value: object) -> str:
    """``value`` safe inside HTML text and attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def document(t: Tr, title: str, body: str, *, viewer: Any = None, status: str = "") -> str:
    """The page around ``body``: header with links, language switch and sign-out (for a signed-in viewer)."""
    head = f'<a href="{PREFIX}/">Export Saathi</a><span class="sp"></span>'
    if viewer is not None:
        if viewer.staff is not None and viewer.admin:
            head += f'<a href="{PREFIX}/">{esc(t._(BOARD_LINK))}</a><a href="{PREFIX}/admin">{esc(t._(ADMIN_LINK))}</a>'
        other = "en" if t.lang == "hi" else "hi"
        head += (f'<form method="post" action="{PREFIX}/lang">{csrf_field(viewer)}'
                 f'<button name="lang" value="{other}">{esc(LANGUAGE_NAMES[other])}</button></form>'
                 f'<form method="post" action="{PREFIX}/logout">{csrf_field(viewer)}<button>{esc(t._(SIGN_OUT))}</button></form>')
    return (f'<!doctype html><html lang="{esc(t.lang)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{esc(title)}</title><style>{CSS}</style></head><body><header>{head}</header>'
            f'<main>{status}{body}</main></body></html>')


def csrf_field(viewer: Any) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(viewer.csrf)}">'


def message_page(t: Tr, text: str, viewer: Any = None) -> str:
    """A page that only says ``text``."""
    return document(t, t._(TITLE), f'<div class="page">{esc(text)}</div>', viewer=viewer)


def _select(name: str, label: str, options: Iterable[tuple[str, str]], chosen: str | None) -> str:
    opts = "".join(f'<option value="{esc(v)}"{" selected" if v == (chosen or "") else ""}>{esc(text)}</option>'
                   for v, text in options)
    return f'<label>{esc(label)}<select name="{name}">{opts}</select></label>'


def _filter_form(t: Tr, vocab: Vocabulary, action: str, chosen: dict[str, str | None], *, status: bool) -> str:
    any_ = ("", t._(FILTER_ANY))
    parts = []
    if status:
        parts.append(_select("status", t._(FILTER_STATUS), [any_, *((s, t._(FILTER_LABELS[s])) for s in BOARD_STATUSES)],
                             chosen.get("status")))
    parts.append(_select("state", t._(FILTER_STATE), [any_, *((k, t._(v)) for k, v in vocab.states.items())], chosen.get("state")))
    parts.append(_select("sector", t._(FILTER_SECTOR), [any_, *((k, t._(v)) for k, v in vocab.sectors.items())],
                         chosen.get("sector")))
    parts.append(_select("lang", t._(FILTER_LANGUAGE), [any_, *LANGUAGE_NAMES.items()], chosen.get("lang")))
    if status:  # the staff board: score and offer dates too
        parts.append(f'<label>{esc(t._(FILTER_SCORE))}<input type="number" name="score" min="0" max="999" inputmode="numeric" '
                     f'value="{esc(chosen.get("score") or "")}"></label><span></span>')
        parts.extend(f'<label>{esc(t._(label))}<input type="date" name="{name}" value="{esc(chosen.get(name) or "")}"></label>'
                     for name, label in (("from", FILTER_FROM), ("to", FILTER_TO)))
    return (f'<form class="filters" method="get" action="{action}">{"".join(parts)}'
            f'<button class="act alt">{esc(t._(FILTER_SHOW))}</button></form>')


def day_text(t: Tr, day: str) -> str:
    """A YYYY-MM-DD day as the viewer's language writes a date."""
    return t.texts.date(t.lang, dt.date.fromisoformat(day))


def _lead_item(t: Tr, vocab: Vocabulary, lead: Any, extra: str = "") -> str:
    p = lead.profile
    place = ", ".join(x for x in (p.get("district"), t._(vocab.states[lead.state]) if lead.state in vocab.states else None) if x)
    sector = t._(vocab.sectors[lead.sector]) if lead.sector in vocab.sectors else ""
    return (f'<li><a href="{PREFIX}/lead/{lead.id}"><b>#{lead.id} {esc(p.get("business_name") or "—")}</b>'
            f'<span class="muted">{esc(p.get("owner_name") or "—")} · {esc(place or "—")} · {esc(sector or "—")} · '
            f'⭐ {esc(t.num(lead.score))}</span>{extra}</a></li>')


def board_page(t: Tr, viewer: Any, vocab: Vocabulary, leads: Sequence[Any], chosen: dict[str, str | None],
               overdue: Sequence[Any] = ()) -> str:
    """The staff board: overdue follow-ups first, then the startup's leads grouped by status, with the filters
    and a link to download what they show."""
    query = urlencode([(k, v) for k, v in chosen.items() if v])
    body = [f'<h1>{esc(t._(BOARD_TITLE, startup=viewer.staff.startup_name))}</h1>']
    if overdue:
        late = "".join(_lead_item(t, vocab, lead, f'<span class="due">{esc(t._(OVERDUE_ITEM, date=day_text(t, lead.follow_up)))}</span>')
                       for lead in overdue)
        body.append(f'<section class="overdue" id="overdue"><h2>⏰ {esc(t._(OVERDUE_TITLE))} ({esc(t.num(len(overdue)))})</h2>'
                    f'<ul class="leads late">{late}</ul></section>')
    body += [_filter_form(t, vocab, f"{PREFIX}/", chosen, status=True),
             f'<p class="export"><a class="btn alt" id="export" href="{PREFIX}/export.csv{"?" + esc(query) if query else ""}" '
             f'download>⬇ {esc(t._(EXPORT_LINK))}</a></p>',
             f'<p class="muted">{esc(t.p_(BOARD_COUNT, len(leads), count=t.num(len(leads))))}</p>']
    if not leads:
        body.append(f'<div class="page">{esc(t._(BOARD_EMPTY))}</div>')
    for status in BOARD_STATUSES:
        group = [lead for lead in leads if lead.status == status]
        if not group:
            continue
        items = []
        for lead in group:
            extra = f'<span class="muted">📅 {esc(t._(FOLLOW_UP_ON, date=day_text(t, lead.follow_up)))}</span>' if lead.follow_up else ""
            items.append(_lead_item(t, vocab, lead, extra))
        body.append(f'<section id="status-{status}"><h2>{esc(t._(STATUS_LABELS[status]))} ({esc(t.num(len(group)))})</h2>'
                    f'<ul class="leads">{"".join(items)}</ul></section>')
    return document(t, t._(BOARD_TITLE, startup=viewer.staff.startup_name), "".join(body), viewer=viewer)


def _move(viewer: Any, lead_id: int, action: str, label: str, *, alt: bool = False) -> str:
    return (f'<form method="post" action="{PREFIX}/lead/{lead_id}">{csrf_field(viewer)}'
            f'<button class="act{" alt" if alt else ""}" name="action" value="{esc(action)}">{esc(label)}</button></form>')


def _note_box(t: Tr, viewer: Any, page: Any) -> str:
    n, lead_id = page.note, page.lead.id
    saved = ""
    if n.note:
        saved = (f'<div class="saved" id="note-text">{esc(n.note)}</div>'
                 f'<p class="muted" id="note-by">{esc(t._(NOTE_BY, who=_who(n.note_by), when=t.when(n.note_at)))}</p>')
    return (f'<section class="box" id="note"><h2>📝 {esc(t._(NOTE_TITLE))}</h2>{saved}'
            f'<form method="post" action="{PREFIX}/lead/{lead_id}/note">{csrf_field(viewer)}'
            f'<textarea name="note" rows="3" maxlength="1000" aria-label="{esc(t._(NOTE_TITLE))}">{esc(n.note or "")}</textarea>'
            f'<span class="muted">{esc(t._(NOTE_HINT, count=t.num(1000)))}</span>'
            f'<div class="row"><button class="act">{esc(t._(NOTE_SAVE))}</button></div></form></section>')


def _follow_up_box(t: Tr, viewer: Any, page: Any, today: dt.date) -> str:
    n, lead_id = page.note, page.lead.id
    saved = ""
    if n.follow_up:
        saved = (f'<p class="due" id="follow-up-day">📅 {esc(t._(FOLLOW_UP_ON, date=day_text(t, n.follow_up)))}</p>'
                 f'<p class="muted">{esc(t._(FOLLOW_UP_SET_BY, who=_who(n.follow_up_by), when=t.when(n.follow_up_at)))}</p>')
    clear = (f'<button class="act alt" name="day" value="">{esc(t._(FOLLOW_UP_CLEAR))}</button>' if n.follow_up else "")
    return (f'<section class="box" id="follow-up"><h2>{esc(t._(FOLLOW_UP_TITLE))}</h2>{saved}'
            f'<form method="post" action="{PREFIX}/lead/{lead_id}/follow-up">{csrf_field(viewer)}'
            f'<input type="date" name="day" min="{today.isoformat()}" max="{(today + dt.timedelta(days=366)).isoformat()}" '
            f'value="{esc(n.follow_up or "")}" aria-label="{esc(t._(FOLLOW_UP_TITLE))}">'
            f'<span class="muted">{esc(t._(FOLLOW_UP_HINT))}</span>'
            f'<div class="row"><button class="act">{esc(t._(FOLLOW_UP_SAVE))}</button>{clear}</div></form></section>')


def _who(by: str | None) -> str:
    """Which staff chat wrote something: "Telegram 501" / "WhatsApp 9198…"."""
    channel, _, ref = (by or "").partition(":")
    name = {"telegram": "Telegram", "whatsapp": "WhatsApp"}.get(channel, channel)
    return f"{name} {ref}".strip() or "—"


def lead_page(t: Tr, viewer: Any, page: Any, card_html: str, reasons: dict[str, Sequence[tuple[str, str]]],
              notice: str = "", refused: bool = False, today: dt.date | None = None) -> str:
    """One lead: the chat's card, the moves the chat offers, the note and follow-up, and the timeline."""
    lead = page.lead
    moves, asks = [], []
    for action in page.actions:
        if action in reasons:  # decline and lost need a reason first, as in chat
            title = LEAD_DECLINE if action == "dec" else LEAD_LOST
            buttons = "".join(_move(viewer, lead.id, f"{action}.{key}", t._(label), alt=True) for key, label in reasons[action])
            asks.append(f'<details><summary>{esc(t._(title))}</summary><div class="moves">{buttons}</div></details>')
        else:
            moves.append(_move(viewer, lead.id, action, t._(ACTION_LABELS[action])))
    if page.undo:  # the chat's ↩️ Undo, while the last step can still be taken back
        moves.append(_move(viewer, lead.id, page.undo, t._(UNDO_LABEL), alt=True))
    steps = [f'<li>{esc(t.when(row["at"]))}: {esc(t._(TIMELINE_LABELS[row["status"]]))}</li>'
             for row in page.timeline if row["status"] in TIMELINE_LABELS]
    status = f'<div class="notice{" refused" if refused else ""}" role="status">{esc(notice)}</div>' if notice else ""
    body = (f'<p><a href="{PREFIX}/">{esc(t._(LEAD_BACK))}</a></p>'
            f'<div class="card">{card_html}</div>'
            + (f'<div class="moves">{"".join(moves)}</div>' if moves else "")
            + "".join(asks)
            + ("" if page.actions else f'<p class="muted">{esc(t._(LEAD_NO_MOVES))}</p>')
            + _note_box(t, viewer, page) + _follow_up_box(t, viewer, page, today or dt.date.today())
            + f'<h2>{esc(t._(LEAD_TIMELINE))}</h2><ol class="timeline">{"".join(steps)}</ol>')
    return document(t, f"#{lead.id}", body, viewer=viewer, status=status)


def bar_chart(t: Tr, bars: Sequence[tuple[str, int]], of: int, label: str, colors: tuple[str, str], svg_id: str = "") -> str:
    """Horizontal bars in an inline SVG (the browser shapes Devanagari): each label above its bar, the
    count and its share of ``of`` beside it; the first bar in ``colors[0]``, the others in ``colors[1]``."""
    width, row, left, top = 360, 46, 8, 8
    biggest = max((count for _, count in bars), default=0) or 1
    bar_space = width - left - 96
    parts = []
    for i, (title, count) in enumerate(bars):
        y = top + i * row
        w = max(bar_space * count / biggest, 2)
        share = f" ({t.texts.percent(t.lang, count / of)})" if of else ""
        parts.append(f'<text x="{left}" y="{y + 14}" font-size="14" fill="#1d2327">{esc(title)}</text>'
                     f'<rect x="{left}" y="{y + 20}" width="{w:.1f}" height="16" rx="4" fill="{colors[0] if i == 0 else colors[1]}">'
                     f'<title>{esc(title)}: {esc(t.num(count))}</title></rect>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 33}" font-size="13" fill="#1d2327">{esc(t.num(count))}{esc(share)}</text>')
    height = top + row * len(bars) + 8
    ident = f' id="{svg_id}"' if svg_id else ""
    return (f'<svg{ident} role="img" aria-label="{esc(label)}" '
            f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" '
            f'font-family="Saathi Devanagari,system-ui,Noto Sans Devanagari,sans-serif">{"".join(parts)}</svg>')


def funnel_svg(t: Tr, funnel: Sequence[Stage]) -> str:
    """The funnel's path as a horizontal bar chart: each stage's share of the first."""
    stages = path_of(list(funnel))
    bars = [(stage.title(t.texts, t.lang), stage.count) for stage in stages]
    return bar_chart(t, bars, stages[0].count if stages else 0, t._(ADMIN_TITLE), ("#1f6f8b", "#4fa3c7"))


def admin_page(t: Tr, viewer: Any, vocab: Vocabulary, funnel: Sequence[Stage], filters: Filters, broadcasts: Sequence[Any],
               module_titles: dict[str, str], extra_filters: str = "", extra: str = "") -> str:
    """The admins' page: the funnel for the filters, then the broadcasts with their counts
    (``extra_filters``: more form fields, first in the form; ``extra``: sections after the broadcasts; bot/web/admin.py)."""
    chosen = {"state": filters.state, "sector": filters.sector, "lang": filters.lang}
    scope = describe_filters(filters, vocab, t.texts, t.lang)
    rows = []
    for report in broadcasts:
        b, c = report.line, report.counts
        what = t._(BROADCAST_MODULE, module=t._(module_titles.get(b.module_id or "", b.module_id or ""))) if b.kind == "module" else (
            (b.text_hi if t.lang == "hi" and b.text_hi else b.text_en) or "")
        what = what if len(what) <= 60 else what[:59] + "…"
        cells = [b.recipients, c.get("sent", 0), c.get("delivered", 0), c.get("read", 0), c.get("failed", 0), c.get("blocked", 0)]
        rows.append(f'<tr><td>#{b.id} {esc(what)}<br><span class="muted">{esc(t.when(b.created_at))}</span></td>'
                    + "".join(f"<td>{esc(t.num(n))}</td>" for n in cells) + "</tr>")
    heads = [COUNT_RECIPIENTS, COUNT_SENT, COUNT_DELIVERED, COUNT_READ, COUNT_FAILED, COUNT_BLOCKED]
    table = (f'<div class="scroll"><table><tr><th>#</th>{"".join(f"<th>{esc(t._(h))}</th>" for h in heads)}</tr>{"".join(rows)}'
             '</table></div>') if rows else f'<div class="page">{esc(t._(BROADCAST_NONE))}</div>'
    form = _filter_form(t, vocab, f"{PREFIX}/admin", chosen, status=False)
    form = form.replace('action="/dashboard/admin">', 'action="/dashboard/admin">' + extra_filters, 1)
    body = (f'<h1>{esc(t._(ADMIN_TITLE))}</h1>' + form
            + f'<p class="muted" id="scope">{esc(scope)}</p>' + funnel_svg(t, funnel)
            + f'<h2>{esc(t._(BROADCASTS))}</h2>' + table + extra)
    return document(t, t._(ADMIN_TITLE), body, viewer=viewer)


def mini_app_page(t: Tr) -> str:
    """The Mini App's first page: hands Telegram's signed init data to the server, then opens the board."""
    wait, refused = esc(t._(MINI_APP_WAIT)), t._(MINI_APP_REFUSED)
    script = (
        "const w=window.Telegram&&Telegram.WebApp;if(w){w.ready();}"
        f"fetch('{PREFIX}/telegram',{{method:'POST',credentials:'same-origin',"
        "headers:{'Content-Type':'application/x-www-form-urlencoded'},"
        "body:'init_data='+encodeURIComponent(w?w.initData:'')})"
        f".then(r=>{{if(r.ok){{location.replace('{PREFIX}/');}}else{{document.getElementById('m').textContent={refused!r};}}}});"
    )
    return (f'<!doctype html><html lang="{esc(t.lang)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Export Saathi</title>'
            f'<style>{CSS}</style><script src="https://telegram.org/js/telegram-web-app.js"></script></head>'
            f'<body><main><div class="page" id="m">{wait}</div></main><script>{script}</script></body></html>')

