"""The admin page's sections below the funnel, as HTML: the date range fields, where onboarding
stops (an inline SVG bar per step, labels in the viewer's language), how far owners got in each
module, the hardest quiz questions and the startups' waiting leads and SLA lapses. Words come from the catalogs; nothing here is
typed by a person except startup names, which are escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.session import N_, Tr
from ..services.admin_dashboard import AdminReport, DateRange, ModuleDropOff, Stop
from .pages import bar_chart, esc

DATE_FROM = N_("From")
DATE_TO = N_("To")
DROP_OFF = N_("Where onboarding stops")
DROP_OFF_NOTE = N_("Owners who have not finished their profile, by the question they are on.")
DROP_OFF_NONE = N_("Nobody is stuck in onboarding.")
MODULES = N_("Where owners stop in the modules")
MODULES_NOTE = N_("Owners who opened each module, who passed its quiz, and where the others are now.")
MODULES_NONE = N_("Nobody has opened a module yet.")
COL_STARTED = N_("Opened")
COL_PASSED = N_("Passed")
COL_WHERE = N_("Where the others are")
AT_LESSON = N_("Lesson {n}")
AT_READ = N_("Lessons read, quiz not started")
AT_QUIZ = N_("In the quiz")
AT_FAILED = N_("Quiz not passed yet")
HARDEST = N_("Hardest quiz questions")
HARDEST_NOTE = N_("Lowest share right on the first try.")
HARDEST_NONE = N_("No quiz answers yet.")
COL_MODULE = N_("Module")
COL_QUESTION = N_("Question")
COL_RIGHT = N_("Right first time")
COL_ANSWERED = N_("Answered")
STARTUPS = N_("Leads waiting and late answers")
COL_STARTUP = N_("Startup")
COL_WAITING = N_("Waiting for an answer")
COL_LAPSED = N_("Not answered in time")
STARTUPS_NONE = N_("No startups yet.")


def date_fields(t: Tr, dates: DateRange) -> str:
    """The ``from``/``to`` day fields for the filter form."""
    def field(name: str, label: str, day) -> str:
        value = day.isoformat() if day else ""
        return (f'<label>{esc(t._(label))}<input type="date" name="{name}" value="{esc(value)}" '
                'style="font:inherit;padding:6px;border:1px solid #c9d1d6;border-radius:6px;background:#fff"></label>')

    return field("from", DATE_FROM, dates.start) + field("to", DATE_TO, dates.end)


def stops_svg(t: Tr, stops: Sequence[Stop]) -> str:
    """Owners stopped per onboarding step as horizontal bars, the step's title above its bar."""
    bars = [(t._(stop.title), stop.count) for stop in stops]
    return bar_chart(t, bars, sum(s.count for s in stops), t._(DROP_OFF), ("#d9822b", "#d9822b"), svg_id="stops")


def _places(t: Tr, m: ModuleDropOff) -> str:
    """Where a module's owners who have not passed are, as HTML, one place per line: "Lesson 2: 3", "In the quiz: 1"."""
    names = {"read": AT_READ, "quiz": AT_QUIZ, "failed": AT_FAILED}
    parts = [esc(f"{t._(AT_LESSON, n=t.num(n)) if kind == 'lesson' else t._(names[kind])}: {t.num(count)}")
             for kind, n, count in m.stops]
    return "<br>".join(parts) or "—"


def modules_table(t: Tr, modules: list[ModuleDropOff]) -> str:
    """One row per module: opened, passed (with its share of opened), where the rest are."""
    shown = [m for m in modules if m.started]
    if not shown:
        return f'<div class="page" id="modules">{esc(t._(MODULES_NONE))}</div>'
    rows = "".join(
        f'<tr><td style="text-align:left">{esc(t._(m.title))}</td><td>{esc(t.num(m.started))}</td>'
        f'<td style="white-space:nowrap">{esc(t.num(m.passed))} ({esc(t.texts.percent(t.lang, m.passed / m.started))})</td>'
        f'<td style="text-align:left">{_places(t, m)}</td></tr>' for m in shown)
    heads = (f'<th style="text-align:left">{esc(t._(COL_MODULE))}</th><th>{esc(t._(COL_STARTED))}</th>'
             f'<th>{esc(t._(COL_PASSED))}</th><th style="text-align:left">{esc(t._(COL_WHERE))}</th>')
    return f'<div class="scroll"><table id="modules"><tr>{heads}</tr>{rows}</table></div>'


def sections(t: Tr, report: AdminReport) -> str:
    """The drop-off chart, the modules' table, the hardest questions and the startups' table."""
    out = [f'<h2>{esc(t._(DROP_OFF))}</h2><p class="muted">{esc(t._(DROP_OFF_NOTE))}</p>']
    out.append(stops_svg(t, report.stops) if report.stops else f'<div class="page" id="stops">{esc(t._(DROP_OFF_NONE))}</div>')

    out.append(f'<h2>{esc(t._(MODULES))}</h2><p class="muted">{esc(t._(MODULES_NOTE))}</p>')
    out.append(modules_table(t, report.modules))

    out.append(f'<h2>{esc(t._(HARDEST))}</h2><p class="muted">{esc(t._(HARDEST_NOTE))}</p>')
    if report.questions:
        rows = "".join(f'<tr><td>{esc(t._(q.module))}</td><td style="text-align:left">{esc(t._(q.text))}</td>'
                       f'<td>{esc(t.texts.percent(t.lang, q.rate))}</td><td>{esc(t.num(q.answered))}</td></tr>'
                       for q in report.questions)
        heads = "".join(f'<th style="text-align:left">{esc(t._(h))}</th>' for h in (COL_MODULE, COL_QUESTION)) + "".join(
            f"<th>{esc(t._(h))}</th>" for h in (COL_RIGHT, COL_ANSWERED))
        out.append(f'<div class="scroll"><table id="hardest"><tr>{heads}</tr>{rows}</table></div>')
    else:
        out.append(f'<div class="page" id="hardest">{esc(t._(HARDEST_NONE))}</div>')

    out.append(f'<h2>{esc(t._(STARTUPS))}</h2>')
    if report.startups:
        rows = "".join(f'<tr><td>{esc(s.name)}</td><td>{esc(t.num(s.waiting))}</td><td>{esc(t.num(s.lapsed))}</td></tr>'
                       for s in report.startups)
        heads = "".join(f"<th>{esc(t._(h))}</th>" for h in (COL_STARTUP, COL_WAITING, COL_LAPSED))
        out.append(f'<div class="scroll"><table id="startups"><tr>{heads}</tr>{rows}</table></div>')
    else:
        out.append(f'<div class="page" id="startups">{esc(t._(STARTUPS_NONE))}</div>')
    return "".join(out)
