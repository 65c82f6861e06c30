"""Leads, as pure rules: the readiness score, which startup gets a lead, and what staff may do.

Nothing here does I/O. ``conversations/qualification.yaml`` becomes a ``Qualification`` (weights,
threshold, required modules) through ``build_qualification``; a startup registry file becomes
``Startup`` records through ``build_startups``. The services feed in plain values (a profile,
module progress, each startup's load this week) and persist what comes out.

- ``readiness`` scores an owner from 0 to 100, item by item, and says what would raise it.
- ``choose_startup`` picks who gets a lead: the referring startup first (if active), otherwise
  the eligible startup (active; serves the state, the sector and the language; under its weekly
  capacity) with the lowest share of its capacity used this week; ties go to the startup offered
  a lead least recently (round robin that needs no counter), then to the specialist, then by id.
- ``next_status`` is the lead's life: offered → accepted → contacted → listed → first order, or
  lost; an offer can instead be declined (the lead moves on to the next startup).
- ``lead_card``, ``score_text`` and ``leads_page`` render what owners and staff see.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

from .content import ID_RE, ContentError, Option, Qualification
from .messages import Choice, Say, Toast
from .payloads import MAX_ID_DIGITS, LeadAction, LeadPage, whole
from .router import Feature
from .session import N_, Kernel, Session, Tr, TurnContext

if TYPE_CHECKING:
    from .content import Content

SCORE_MAX = 100
LANGUAGES = ("hi", "en")
REFERRAL_CODE_RE = re.compile(r"^[A-Za-z0-9]{4,32}$")
PAGE_SIZE = 5

# ----------------------------------------------------------------- qualification rules




def _field_step(content: Content, name: str):
    return next((s for s in content.onboarding.steps.values() if s.field == name), None)


def build_qualification(data: Any, source: str, content: Content) -> Qualification:
    """Validate the qualification rules against the onboarding answers and the modules."""

    def fail(field: str, problem: str) -> ContentError:
        return ContentError(source, f"qualification, field '{field}'", problem)

    if not isinstance(data, dict):
        raise ContentError(source, "qualification", "expected a mapping of fields")
    known = {"threshold", "required_modules", "registrations", "experience", "turnover", "quizzes"}
    for key in data:
        if key not in known:
            raise fail(str(key), f"is not a known field (known: {', '.join(sorted(known))})")
    for key in sorted(known):
        if key not in data:
            raise fail(key, "is missing")

    def points(field: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= SCORE_MAX:
            raise fail(field, f"points must be whole numbers from 0 to {SCORE_MAX}, got {value!r}")
        return value

    def mapping(field: str) -> dict:
        value = data[field]
        if not isinstance(value, dict) or not value:
            raise fail(field, "must be a non-empty mapping of id: points")
        return {str(k): v for k, v in value.items()}

    threshold = data["threshold"]
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not 1 <= threshold <= SCORE_MAX:
        raise fail("threshold", f"must be a whole number from 1 to {SCORE_MAX}")
    module_ids = {m.id for m in content.modules}
    required = data["required_modules"]
    if not isinstance(required, list) or not all(isinstance(m, str) for m in required):
        raise fail("required_modules", "must be a list of module ids")
    for module_id in required:
        if module_id not in module_ids:
            raise fail("required_modules", f"names module '{module_id}', which does not exist")

    registrations = []
    for name, value in mapping("registrations").items():
        step = _field_step(content, name)
        if step is None or step.option("yes") is None:
            raise fail("registrations", f"'{name}' is not an onboarding question with a 'yes' answer")
        registrations.append((name, points(f"registrations.{name}", value)))

    def answers(field: str) -> tuple[tuple[str, int], ...]:
        table = mapping(field)
        step = _field_step(content, field)
        if step is None or not step.options:
            raise fail(field, f"the onboarding has no '{field}' question with options")
        options = [o.id for o in step.options]
        for answer in table:
            if answer not in options:
                raise fail(field, f"'{answer}' is not an answer of the '{field}' question (answers: {', '.join(options)})")
        for answer in options:
            if answer not in table:
                raise fail(field, f"gives no points for the answer '{answer}'")
        return tuple((answer, points(f"{field}.{answer}", table[answer])) for answer in options)

    experience, turnover = answers("experience"), answers("turnover")
    quizzes = []
    for module_id, value in mapping("quizzes").items():
        if module_id not in module_ids:
            raise fail("quizzes", f"names module '{module_id}', which does not exist")
        quizzes.append((module_id, points(f"quizzes.{module_id}", value)))
    total = (
        sum(p for _, p in registrations) + max(p for _, p in experience) + max(p for _, p in turnover) + sum(p for _, p in quizzes)
    )
    if total != SCORE_MAX:
        raise ContentError(source, "qualification", f"the best possible score adds up to {total}; the weights must add up to {SCORE_MAX}")
    return Qualification(threshold, tuple(required), tuple(registrations), experience, turnover, tuple(quizzes))


# ----------------------------------------------------------------- the readiness score


class Progressish(Protocol):
    """What scoring needs from a module's progress (``session.ModuleProgress`` has it)."""

    best: int | None
    passed: bool


@dataclass(frozen=True)
class ScoreItem:
    """One line of the score: ``key`` is a profile field (iec, experience…) or ``quiz:<module>``."""

    key: str
    points: int
    max: int
    answer: str | None = None  # the owner's answer id, or "best/total" for a quiz

    def as_data(self) -> dict:
        """Plain values, for storing with the lead."""
        return {"key": self.key, "points": self.points, "max": self.max, "answer": self.answer}

    @classmethod
    def from_data(cls, data: Mapping) -> ScoreItem:
        """The item stored by ``as_data``."""
        return cls(str(data["key"]), int(data["points"]), int(data["max"]), data.get("answer"))


@dataclass(frozen=True)
class Readiness:
    """An owner's score, how it was made up, and whether it qualifies for a lead."""

    score: int
    items: tuple[ScoreItem, ...]
    threshold: int
    missing_modules: tuple[str, ...]

    @property
    def qualifies(self) -> bool:
        """Score at the threshold and every required module passed."""
        return self.score >= self.threshold and not self.missing_modules


def _share(points: int, got: int, out_of: int) -> int:
    """``points × got / out_of``, rounded half up, in whole numbers."""
    if out_of <= 0:
        return 0
    return (2 * points * got + out_of) // (2 * out_of)


def readiness(rules: Qualification, content: Content, profile: Mapping, progress: Mapping[str, Progressish]) -> Readiness:
    """Score ``profile`` and ``progress`` by ``rules``, item by item."""
    items: list[ScoreItem] = []
    for name, worth in rules.registrations:
        answer = profile.get(name)
        items.append(ScoreItem(name, worth if answer == "yes" else 0, worth, answer))
    for name, table in (("experience", rules.experience), ("turnover", rules.turnover)):
        answer = profile.get(name)
        items.append(ScoreItem(name, dict(table).get(answer, 0), max(p for _, p in table), answer))
    for module_id, worth in rules.quizzes:
        module = content.module(module_id)
        total = len(module.quiz) if module else 0
        p = progress.get(module_id)
        best = (p.best or 0) if p is not None else 0
        items.append(ScoreItem(f"quiz:{module_id}", _share(worth, best, total), worth, f"{best}/{total}"))
    score = max(0, min(SCORE_MAX, sum(i.points for i in items)))
    missing = tuple(m for m in rules.required_modules if not ((p := progress.get(m)) is not None and p.passed))
    return Readiness(score, tuple(items), rules.threshold, missing)


# ----------------------------------------------------------------- startups


@dataclass(frozen=True)
class Startup:
    """A partner startup from the registry. ``states``/``sectors`` ``None`` means all of them."""

    id: str
    name: str
    states: frozenset[str] | None = None
    sectors: frozenset[str] | None = None
    languages: tuple[str, ...] = LANGUAGES
    weekly_capacity: int = 10
    active: bool = True
    referral_code: str | None = None


_ALL_WORDS = {"*", "all", "any", "all-india", "all_india"}
_TRUE = {"true", "yes", "y", "1", "active", "on"}
_FALSE = {"false", "no", "n", "0", "inactive", "off"}


def _words(value: Any) -> list[str] | None:
    """A list from YAML (list or string) or a CSV cell ("a; b", "a, b"); ``None`` means all."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in re.split(r"[;,|]", value) if p.strip()]
    elif isinstance(value, list):
        parts = [str(p).strip() for p in value]
    else:
        raise ValueError
    if not parts or any(p.lower() in _ALL_WORDS for p in parts):
        return None
    return parts


def build_startups(
    rows: Sequence[Any],
    source: str,
    *,
    states: Iterable[str] = (),
    sectors: Iterable[str] = (),
) -> list[Startup]:
    """Validate registry rows (YAML mappings or CSV rows of strings) into ``Startup`` records.

    ``states``/``sectors`` are the ids the onboarding offers; a startup serving an id that no
    owner can pick would silently never get a lead, so it is an error.
    """
    known_states, known_sectors = set(states), set(sectors)
    found: list[Startup] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        where = f"startup #{index + 1}"
        if not isinstance(row, dict):
            raise ContentError(source, where, "expected a mapping of fields")
        row = {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k is not None}
        ident = row.get("id")
        if not isinstance(ident, str) or not ID_RE.match(ident):
            raise ContentError(source, f"{where}, field 'id'", f"{ident!r} is not a snake_case id (a-z, 0-9, _; ≤ 40 characters)")
        where = f"startup '{ident}'"

        def fail(field: str, problem: str) -> ContentError:
            return ContentError(source, f"{where}, field '{field}'", problem)

        known = {"id", "name", "states", "sectors", "languages", "weekly_capacity", "active", "referral_code"}
        for key in row:
            if key not in known:
                raise fail(key, f"is not a known field (known: {', '.join(sorted(known))})")
        if ident in seen:
            raise ContentError(source, where, f"startup id '{ident}' is used twice")
        seen.add(ident)
        name = row.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            raise fail("name", "must be a non-empty name of at most 80 characters")
        served: dict[str, frozenset[str] | None] = {}
        for field, ids in (("states", known_states), ("sectors", known_sectors)):
            try:
                words = _words(row.get(field, "*") if row.get(field, "*") != "" else "*")
            except ValueError:
                raise fail(field, "must be a list of ids, or all") from None
            if words is not None and ids:
                unknown = [w for w in words if w not in ids]
                if unknown:
                    raise fail(field, f"'{unknown[0]}' is not one of the onboarding's {field} ids")
            served[field] = None if words is None else frozenset(words)
        try:
            languages = _words(row.get("languages") or "hi, en")
        except ValueError:
            raise fail("languages", "must be a list of language codes") from None
        languages = list(LANGUAGES) if languages is None else languages
        if not languages or any(lang not in LANGUAGES for lang in languages):
            raise fail("languages", f"must name languages from {', '.join(LANGUAGES)}")
        capacity = row.get("weekly_capacity", 10)
        if isinstance(capacity, str) and capacity.isdigit():
            capacity = int(capacity)
        if not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 <= capacity <= 10_000:
            raise fail("weekly_capacity", "must be a whole number of leads a week, from 0 to 10000")
        active = row.get("active", True)
        if isinstance(active, str) and active.lower() in _TRUE | _FALSE | {""}:
            active = active.lower() not in _FALSE
        if not isinstance(active, bool):
            raise fail("active", "must be true or false")
        code = row.get("referral_code") or None
        if code is not None and (not isinstance(code, str) or not REFERRAL_CODE_RE.match(code)):
            raise fail("referral_code", "must be 4 to 32 letters and digits")
        found.append(
            Startup(ident, name.strip(), served["states"], served["sectors"], tuple(dict.fromkeys(languages)), capacity, active, code)
        )
    return found


# ----------------------------------------------------------------- choosing a startup


@dataclass(frozen=True)
class LeadFacts:
    """What eligibility looks at."""

    state: str | None
    sector: str | None
    lang: str


@dataclass(frozen=True)
class Candidate:
    """A startup and its load: offers received in the last 7 days, and when it was last offered one."""

    startup: Startup
    offers_this_week: int = 0
    last_offered_at: int | None = None

    @property
    def share(self) -> Fraction:
        """How much of its weekly capacity is used (exact, so ties are real ties)."""
        if self.startup.weekly_capacity <= 0:
            return Fraction(1)
        return Fraction(self.offers_this_week, self.startup.weekly_capacity)


def serves(startup: Startup, lead: LeadFacts) -> bool:
    """Active, and serves the lead's state, sector and language."""
    return (
        startup.active
        and (startup.states is None or lead.state in startup.states)
        and (startup.sectors is None or lead.sector in startup.sectors)
        and lead.lang in startup.languages
    )


def eligible(lead: LeadFacts, candidates: Iterable[Candidate], offered: Iterable[str] = ()) -> list[Candidate]:
    """Startups that may get ``lead`` now: serve it, have capacity left, were never offered it."""
    done = set(offered)
    return [
        c for c in candidates
        if c.startup.id not in done and serves(c.startup, lead) and c.offers_this_week < c.startup.weekly_capacity
    ]


def choose_startup(
    lead: LeadFacts,
    candidates: Sequence[Candidate],
    *,
    referral: str | None = None,
    offered: Iterable[str] = (),
) -> Startup | None:
    """Who gets ``lead`` next; ``None`` if nobody can (the lead waits unassigned).

    The startup whose referral link brought the owner comes first, whatever its capacity, area
    or sector (the commission follows the referral), as long as it is active and has not had
    the lead already. Otherwise the lowest share of weekly capacity used wins; on a tie the one
    offered a lead least recently (never offered comes first), then the specialist (fewest
    states, then sectors, served: it knows the cluster), then the smaller id, so the choice is
    the same however often it is computed.
    """
    done = set(offered)
    if referral is not None and referral not in done:
        ref = next((c for c in candidates if c.startup.id == referral), None)
        if ref is not None and ref.startup.active:
            return ref.startup
    pool = eligible(lead, candidates, done)
    if not pool:
        return None
    def breadth(served: frozenset[str] | None) -> float:
        return math.inf if served is None else len(served)

    best = min(
        pool,
        key=lambda c: (
            c.share, -1 if c.last_offered_at is None else c.last_offered_at,
            breadth(c.startup.states), breadth(c.startup.sectors), c.startup.id,
        ),
    )
    return best.startup


# ----------------------------------------------------------------- a lead's life

STATUSES = ("unassigned", "offered", "accepted", "contacted", "listed", "first_order", "lost", "withdrawn")
PIPELINE = ("accepted", "contacted", "listed", "first_order")
ACTION_STATUS = {"acc": "accepted", "con": "contacted", "lst": "listed", "ord": "first_order", "lost": "lost"}
"""Button action → the status it moves the lead to ("dec" declines the offer instead)."""


def next_status(status: str, action: str) -> str | None:
    """The status ``action`` moves a lead in ``status`` to; ``None`` if it is not allowed now.

    Declining returns "declined": the offer ends and the lead goes to the next startup.
    """
    if status == "offered":
        return {"acc": "accepted", "dec": "declined"}.get(action)
    if status in PIPELINE[:-1]:
        target = ACTION_STATUS.get(action)
        if target == "lost":
            return "lost"
        if target in PIPELINE and PIPELINE.index(target) > PIPELINE.index(status):
            return target
    return None


UNDO_SECONDS = 600  # a startup can take back its last step for ten minutes
UNDOABLE = ("contacted", "listed", "first_order", "lost")  # accepting and declining reach the owner or the next startup at once


@dataclass(frozen=True)
class StaffDecision:
    """What a tap on a lead card decides, before anything is stored (``decide_staff_tap``).

    ``kind``: ``refuse`` (``why``: stale, not_yours, not_now, too_late), ``view`` (show the card),
    ``ask_reason`` (decline or lost without a reason yet: ask, change nothing), ``accept``,
    ``decline``, ``advance`` (to ``target``), ``undo`` (history row ``move_id``; back to ``target``).
    """

    kind: str
    why: str = ""
    target: str = ""
    reason: str = ""
    move_id: int = 0

    @property
    def undoable(self) -> bool:
        """Whether the step it makes can be taken back (the answer offers ↩️ Undo)."""
        return self.kind == "advance" and self.target in UNDOABLE


def undoable_move(moves: Sequence[tuple[int, str, int]], lead_status: str, now: int) -> int | None:
    """The history row (id) a startup can still take back: its last step, if that is undoable, still the
    lead's status, and at most ``UNDO_SECONDS`` old; else ``None``. ``moves`` as ``decide_staff_tap`` takes them."""
    last = moves[-1] if moves else None
    if last is None or len(moves) < 2 or last[1] != lead_status or last[1] not in UNDOABLE or now - last[2] > UNDO_SECONDS:
        return None
    return last[0]


def decide_staff_tap(
    action: str, lead_status: str | None, lead_startup: str | None, startup_id: str,
    moves: Sequence[tuple[int, str, int]] = (), now: int = 0,
) -> StaffDecision:
    """The rules of a lead-card tap by staff of ``startup_id``, on the facts loaded before the turn.

    ``lead_status`` and ``lead_startup`` are the lead as stored (``None``: no such lead); ``moves``
    are its history rows while with this startup, oldest first, as ``(id, status, when)``.
    """
    base, _, detail = action.partition(".")
    if base == "view" and not detail:
        return StaffDecision("view") if lead_startup == startup_id and lead_status is not None else StaffDecision("refuse", "not_yours")
    if base == "undo":
        move_id = whole(detail, MAX_ID_DIGITS)
        if move_id is None:
            return StaffDecision("refuse", "stale")
    elif base not in ACTION_LABELS or (detail and reason_label(base, detail) is None):
        return StaffDecision("refuse", "stale")
    if lead_status is None or lead_startup != startup_id:
        return StaffDecision("refuse", "not_yours")
    if base == "undo":
        if undoable_move(moves, lead_status, now) != move_id:
            return StaffDecision("refuse", "too_late")
        return StaffDecision("undo", target=moves[-2][1], move_id=move_id)
    target = next_status(lead_status, base)
    if target is None:
        return StaffDecision("refuse", "not_now")
    if base in ("dec", "lost") and not detail:
        return StaffDecision("ask_reason", reason=base)
    if target == "accepted":
        return StaffDecision("accept", target=target)
    if target == "declined":
        return StaffDecision("decline", target=target, reason=detail)
    return StaffDecision("advance", target=target, reason=detail)


def actions_for(status: str) -> tuple[str, ...]:
    """The buttons a lead in ``status`` offers its startup."""
    if status == "offered":
        return ("acc", "dec")
    if status in PIPELINE[:-1]:
        forward = [a for a in ("con", "lst", "ord") if next_status(status, a)]
        return (*forward, "lost")
    return ()


ACTION_LABELS = {
    "acc": N_("Accept"),
    "dec": N_("Decline"),
    "con": N_("Contacted"),
    "lst": N_("Listed on Alibaba"),
    "ord": N_("First export order"),
    "lost": N_("Lost"),
}
UNDO_LABEL = N_("↩️ Undo")
DECLINE_REASONS = (
    ("area", N_("Not our area")),
    ("sector", N_("Not our sector")),
    ("busy", N_("No capacity now")),
    ("not_ready", N_("Not ready to export")),
    ("other", N_("Other reason")),
)
LOST_REASONS = (
    ("unreachable", N_("Owner not reachable")),
    ("not_interested", N_("Not interested")),
    ("cannot_list", N_("Cannot list yet")),
    ("other", N_("Other reason")),
)
STATUS_LABELS = {
    "unassigned": N_("Waiting for a startup"),
    "offered": N_("New: waiting for your answer"),
    "accepted": N_("Accepted"),
    "contacted": N_("Contacted"),
    "listed": N_("Listed on Alibaba.com"),
    "first_order": N_("First export order"),
    "lost": N_("Lost"),
    "withdrawn": N_("Withdrawn by the owner"),
}
# A lead's moves as its startup's card lists them.
TIMELINE_LABELS = {**STATUS_LABELS, "offered": N_("Offered to you")}
del TIMELINE_LABELS["unassigned"]
# What an owner reads about their own lead (/my_data): words, never the status codes.
OWNER_STATUS = {
    "unassigned": N_("waiting for a partner startup to take it up"),
    "offered": N_("waiting for a partner startup to take it up"),
    "accepted": N_("{startup} has taken it up and will contact you"),
    "contacted": N_("{startup} is in touch with you"),
    "listed": N_("your business is listed on Alibaba.com with {startup}'s help"),
    "first_order": N_("your first export order has come in"),
    "lost": N_("{startup} has closed it"),
    "withdrawn": N_("withdrawn at your request"),
}
FILTERS = ("all", "offered", "accepted", "contacted", "listed", "first_order", "lost")
FILTER_LABELS = {
    "all": N_("All"),
    "offered": N_("New"),
    "accepted": N_("Accepted"),
    "contacted": N_("Contacted"),
    "listed": N_("Listed"),
    "first_order": N_("First order"),
    "lost": N_("Lost"),
}
BUTTON_LABELS = (
    *ACTION_LABELS.values(), *(label for _, label in DECLINE_REASONS), *(label for _, label in LOST_REASONS),
    *FILTER_LABELS.values(),
)
"""Every button label this module shows (kept within the 20-character limit in each language)."""


def payload(lead_id: int, action: str) -> str:
    """A lead-card button (``payloads.LeadAction``)."""
    return LeadAction(lead_id, action).encode()


def page_payload(status_filter: str, page: int) -> str:
    """A ``/leads`` paging or filter button (``payloads.LeadPage``)."""
    return LeadPage(status_filter, page).encode()


# ----------------------------------------------------------------- what people see

SCORE_TITLE = N_("<b>Your export readiness: {score}/100</b>")
QUIZ_ITEM = N_("Quiz scores")
RAISE_TITLE = N_("<b>What would raise it</b>")
RAISE_IEC = N_("Get an IEC on dgft.gov.in: ₹500 fee, valid for life (+{points})")
RAISE_GST = N_("Register for GST (+{points})")
RAISE_UDYAM = N_("Register on Udyam: free and online (+{points})")
RAISE_OTHER = N_("{item}: get it done (+{points})")
RAISE_QUIZ_NEW = N_("Take the “{module}” quiz (up to +{points})")
RAISE_QUIZ_AGAIN = N_("Take the “{module}” quiz again for a full score (up to +{points})")
QUALIFIED = N_(
    "🎉 You have reached {threshold}. A partner startup for your area gets your details; "
    "I will tell you here which one will contact you."
)
NEEDS_MODULES = N_("Your score is enough. Pass {modules} and a partner startup for your area will be introduced to you.")
BELOW = N_("At {threshold} points, with the core modules passed, a partner startup for your area helps you list on Alibaba.com.")
NOT_SET_UP = N_("The readiness score is not set up yet.")
FINISH_PROFILE = N_("Let's finish your profile first; the training opens right after.")


def _option_label(t: Tr, option: Option) -> str:
    label = t._(option.label)
    if option.amounts:
        label = label.format(**{k: t.money(v) for k, v in option.amounts})
    return label


def item_label(t: Tr, content: Content, item: ScoreItem) -> str:
    """The item's name in the reader's language: the onboarding's own label for the answer."""
    if item.key.startswith("quiz:"):
        module = content.module(item.key[5:])
        return t._(module.title) if module else item.key[5:]
    step = _field_step(content, item.key)
    return t._(step.summary_label) if step is not None and step.summary_label else item.key


def answer_label(t: Tr, content: Content, field: str, answer: Any) -> str:
    """An owner's answer to an onboarding choice, as they saw it ("—" when unanswered)."""
    step = _field_step(content, field)
    option = step.option(answer) if step is not None and isinstance(answer, str) else None
    if option is not None:
        return _option_label(t, option)
    return "—" if answer in (None, "", []) else t.esc(answer)


def score_lines(t: Tr, content: Content, items: Sequence[ScoreItem]) -> list[str]:
    """One line per profile item and one for all the quizzes: icon, name, answer, points."""

    def icon(points: int, most: int) -> str:
        return "✅" if points >= most else ("🔸" if points > 0 else "➖")

    lines = []
    quiz = [i for i in items if i.key.startswith("quiz:")]
    for item in items:
        if item in quiz:
            continue
        answer = answer_label(t, content, item.key, item.answer)
        lines.append(f"{icon(item.points, item.max)} {item_label(t, content, item)}: {answer} · {t.num(item.points)}/{t.num(item.max)}")
    if quiz:
        got, most = sum(i.points for i in quiz), sum(i.max for i in quiz)
        lines.append(f"{icon(got, most)} {t._(QUIZ_ITEM)} · {t.num(got)}/{t.num(most)}")
    return lines


def raise_tips(t: Tr, content: Content, result: Readiness, progress: Mapping[str, Progressish], limit: int = 5) -> list[str]:
    """What the owner can do to raise the score, biggest gain first: registrations, then quizzes."""
    tips: list[tuple[int, str]] = []
    for item in result.items:
        gain = item.max - item.points
        if gain <= 0 or item.key in ("experience", "turnover"):  # not something to fix this week
            continue
        if item.key.startswith("quiz:"):
            module = content.module(item.key[5:])
            if module is None:
                continue
            p = progress.get(module.id)
            text = RAISE_QUIZ_AGAIN if p is not None and p.best is not None else RAISE_QUIZ_NEW
            tips.append((gain, t._(text, module=t._(module.title), points=t.num(gain))))
        else:
            text = {"iec": RAISE_IEC, "gst": RAISE_GST, "udyam": RAISE_UDYAM}.get(item.key)
            if text is None:
                tips.append((gain, t._(RAISE_OTHER, item=item_label(t, content, item), points=t.num(gain))))
            else:
                tips.append((gain, t._(text, points=t.num(gain))))
    tips.sort(key=lambda tip: -tip[0])  # stable: equal gains keep the file's order
    return [text for _, text in tips[:limit]]


def score_text(t: TurnContext, content: Content, rules: Qualification) -> str:
    """The owner's ``/score``: the score, item by item, what would raise it, and what comes next."""
    result = readiness(rules, content, t.s.profile, t.s.progress)
    lines = [t._(SCORE_TITLE, score=t.num(result.score)), *score_lines(t, content, result.items)]
    tips = raise_tips(t, content, result, t.s.progress)
    if tips:
        lines += ["", t._(RAISE_TITLE), *(f"• {tip}" for tip in tips)]
    lines.append("")
    if result.qualifies:
        lines.append(t._(QUALIFIED, threshold=t.num(rules.threshold)))
    elif result.score >= rules.threshold:
        names = ", ".join(t._(m.title) for m_id in result.missing_modules if (m := content.module(m_id)))
        lines.append(t._(NEEDS_MODULES, modules=names))
    else:
        lines.append(t._(BELOW, threshold=t.num(rules.threshold)))
    return "\n".join(lines)


def score_command(engine: Kernel, t: TurnContext) -> None:
    """``/score`` in the owner conversation (pure: profile + progress + rules)."""
    rules = engine.content.qualification
    if not t.s.onboarded:
        t.say(t._(FINISH_PROFILE))
    elif rules is None:
        t.say(t._(NOT_SET_UP))
    else:
        t.say(score_text(t, engine.content, rules))
    engine.ask_current(t, again=True)


# ----------------------------------------------------------------- the lead card (staff)

CARD_TITLE = N_("<b>Lead #{id}</b> · {status}")
CARD_LANGUAGE = N_("🗣 Speaks: {language}")
CARD_MARKETS = N_("🌍 Markets: {markets}")
CARD_TIMELINE = N_("🕑 So far:")
CARD_AGAIN = N_("🔁 Sent again, as the connection broke while it was being sent. If you already have this card, either copy works.")
CARD_SCORE = N_("⭐ Readiness {score}/100:")
CARD_MODULES = N_("📚 Modules passed: {modules}")
CARD_NO_MODULES = N_("📚 Modules passed: none")
CARD_REFERRAL = N_("🔗 This owner came through your referral link.")
CARD_DEADLINE = N_("Please accept or decline within {hours} hours, or the lead goes to another startup.")


@dataclass(frozen=True)
class LeadView:
    """Everything a lead card shows: the lead, the owner's profile now, the modules passed."""

    id: int
    status: str
    score: int
    items: tuple[ScoreItem, ...]
    profile: Mapping
    passed_modules: tuple[str, ...] = ()
    by_referral: bool = False
    sla_hours: float = 48
    lang: str | None = None  # the owner's language
    timeline: tuple[tuple[str, int], ...] = ()  # (status, when) of this startup's moves, oldest first


TIMELINE_SHOWN = 6  # the latest moves a card lists; older ones are in the dashboard and the export
LANGUAGE_NAMES = {"hi": "हिन्दी", "en": "English"}  # each language by its own name, as the owner picked it


def lead_card(t: Tr, content: Content, lead: LeadView) -> Say:
    """The card a startup's staff get: who, where, what, registrations, score, phone, and buttons."""
    p = lead.profile
    place = ", ".join(x for x in (t.esc(p.get("district") or ""), answer_label(t, content, "state", p.get("state"))) if x and x != "—")
    registrations = " · ".join(
        f"{item_label(t, content, ScoreItem(name, 0, 0))}: {answer_label(t, content, name, p.get(name))}"
        for name in ("iec", "gst", "udyam")
        if _field_step(content, name) is not None
    )
    modules = [t._(m.title) for m in content.modules if m.id in lead.passed_modules]
    phone = t.phone(p.get("phone")) or "—"
    markets = [answer_label(t, content, "markets", m) for m in p.get("markets") or () if isinstance(m, str)]
    title = t._(CARD_TITLE, id=lead.id, status=t._(STATUS_LABELS.get(lead.status, lead.status)))
    lines = [
        f"🆕 {title}" if lead.status == "offered" else f"📋 {title}",  # new only until the startup answers
        f"🏭 <b>{t.esc(p.get('business_name') or '—')}</b>",
        f"👤 {t.esc(p.get('owner_name') or '—')}",
        f"📍 {place or '—'}",
        f"📦 {answer_label(t, content, 'sector', p.get('sector'))}",
        f"🧾 {registrations}",
        f"📞 {t.esc(phone)}",
    ]
    if lead.lang in LANGUAGE_NAMES:
        lines.append(t._(CARD_LANGUAGE, language=LANGUAGE_NAMES[lead.lang]))
    if markets:
        lines.append(t._(CARD_MARKETS, markets=", ".join(markets)))
    lines += [
        "",
        t._(CARD_SCORE, score=t.num(lead.score)),
        *score_lines(t, content, lead.items),
        t._(CARD_MODULES, modules=", ".join(modules)) if modules else t._(CARD_NO_MODULES),
    ]
    if lead.by_referral:
        lines.append(t._(CARD_REFERRAL))
    moves = [(status, at) for status, at in lead.timeline if status in TIMELINE_LABELS][-TIMELINE_SHOWN:]
    if len(moves) > 1:  # a single "offered" says nothing the title does not
        lines += ["", t._(CARD_TIMELINE), *(f"• {t.when(at)}: {t._(TIMELINE_LABELS[status])}" for status, at in moves)]
    if lead.status == "offered":
        hours = int(lead.sla_hours) if float(lead.sla_hours).is_integer() else lead.sla_hours
        lines += ["", t._(CARD_DEADLINE, hours=t.num(hours))]
    return Say("\n".join(lines), action_buttons(t, lead.id, lead.status), columns=2, again=t._(CARD_AGAIN))


def action_buttons(t: Tr, lead_id: int, status: str) -> tuple[Choice, ...]:
    """The buttons for a lead in ``status``."""
    return tuple(Choice(payload(lead_id, a), t._(ACTION_LABELS[a])) for a in actions_for(status))


def reason_buttons(t: Tr, lead_id: int, action: str) -> tuple[Choice, ...]:
    """Reasons to pick when declining (``dec``) or losing (``lost``) a lead."""
    reasons = DECLINE_REASONS if action == "dec" else LOST_REASONS
    return tuple(Choice(payload(lead_id, f"{action}.{rid}"), t._(label)) for rid, label in reasons)


def reason_label(action: str, reason: str) -> str | None:
    """The msgid of a decline/lost reason, or ``None`` if there is no such reason."""
    reasons = DECLINE_REASONS if action == "dec" else LOST_REASONS
    return dict(reasons).get(reason)


# ----------------------------------------------------------------- /leads (staff)

LIST_TITLE = N_("<b>{startup}</b>: your leads · {filter} · page {page} of {pages}")
LIST_EMPTY = N_("No leads here yet.")
LIST_REFERRALS = N_(
    "🔗 Owners who came through your referral link: {brought}; profile done: {onboarded}; "
    "core modules passed: {ready}; leads: {leads}."
)
LIST_HINT = N_("Tap a lead to see its card and buttons.")


@dataclass(frozen=True)
class LeadRow:
    """One line of ``/leads``."""

    id: int
    status: str
    score: int
    profile: Mapping


@dataclass(frozen=True)
class ReferralFunnel:
    """How far the owners a startup brought have got."""

    brought: int = 0
    onboarded: int = 0
    ready: int = 0
    leads: int = 0


def leads_page(
    t: Tr,
    content: Content,
    startup_name: str,
    rows: Sequence[LeadRow],
    *,
    status_filter: str,
    page: int,
    pages: int,
    referrals: ReferralFunnel,
) -> Say:
    """One page of a startup's leads, newest first, with lead, paging and filter buttons."""
    lines = [
        t._(LIST_TITLE, startup=t.esc(startup_name), filter=t._(FILTER_LABELS[status_filter]), page=t.num(page + 1), pages=t.num(max(pages, 1))),
        t._(LIST_REFERRALS, brought=t.num(referrals.brought), onboarded=t.num(referrals.onboarded),
            ready=t.num(referrals.ready), leads=t.num(referrals.leads)),
        "",
    ]
    choices: list[Choice] = []
    if not rows:
        lines.append(t._(LIST_EMPTY))
    for row in rows:
        p = row.profile
        business = p.get("business_name") or "—"
        place = ", ".join(x for x in (t.esc(p.get("district") or ""), answer_label(t, content, "state", p.get("state"))) if x and x != "—")
        lines.append(
            f"#{row.id} <b>{t.esc(business)}</b> · {place or '—'} · {answer_label(t, content, 'sector', p.get('sector'))} · "
            f"⭐ {t.num(row.score)} · {t._(STATUS_LABELS.get(row.status, row.status))}"
        )
        label = f"#{row.id} {business}"
        choices.append(Choice(payload(row.id, "view"), label if len(label) <= 20 else label[:19] + "…"))
    if rows:
        lines += ["", t._(LIST_HINT)]
    if page > 0:
        choices.append(Choice(page_payload(status_filter, page - 1), "◀"))
    if page + 1 < pages:
        choices.append(Choice(page_payload(status_filter, page + 1), "▶"))
    for name in FILTERS:
        if name != status_filter:
            choices.append(Choice(page_payload(name, 0), t._(FILTER_LABELS[name])))
    return Say("\n".join(lines), tuple(choices), columns=2)


def refusal(t: Tr, text: str, **values: object) -> Toast:
    """A polite no, shown where the button was tapped."""
    return Toast(t._(text, **values))


def _score_after_change(content: Content, session: Session) -> int | None:
    rules = content.qualification
    return None if rules is None else readiness(rules, content, session.profile, session.progress).score


FEATURE = Feature(
    "readiness",
    commands={"score": lambda engine, t, name: score_command(engine, t)},
    score=_score_after_change,
)
"""Export readiness in the owner conversation: /score, and the score after a change of profile."""
