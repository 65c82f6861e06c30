"""Leads as pure rules: the readiness score, eligibility, choosing a startup, a lead's life, the cards.

Plain values in, plain values out: the shipped qualification rules and catalogs, no database.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from bot.content import default_content_dir, load_content
from bot.core import leads as L
from bot.core.content import Content, ContentError
from bot.core.engine import Engine
from bot.core.messages import Inbound, Say
from bot.core.session import ModuleProgress, Session, TurnContext
from bot.i18n import Catalogs
from bot.storage.leads import read_startup_rows

DEVANAGARI = re.compile(r"[\u0900-\u097F]")
PROFILE = {
    "owner_name": "Ramesh Kumar",
    "business_name": "Kumar Brass & Sons <Moradabad>",
    "state": "uttar_pradesh",
    "district": "Moradabad",
    "sector": "handicrafts",
    "udyam": "not_sure",
    "iec": "yes",
    "gst": "no",
    "experience": "occasionally",
    "turnover": "upto_10_crore",
    "markets": ["europe"],
    "phone": "+919876543210",
}


def passed(best: int) -> ModuleProgress:
    return ModuleProgress(lesson=6, attempt=1, best=best, passed=True)


CORE_PASSED = {"export_ready": passed(5), "payments": passed(4), "alibaba": passed(3)}


def ctx(catalogs: Catalogs, lang: str, **session) -> TurnContext:
    return TurnContext(Session(lang=lang, **session), catalogs)


# ----------------------------------------------------------------- the score
def test_shipped_rules(content: Content):
    rules = content.qualification
    assert rules is not None
    assert rules.threshold == 50
    assert rules.required_modules == content.required_modules
    best = sum(p for _, p in rules.registrations) + max(p for _, p in rules.experience) + max(p for _, p in rules.turnover)
    assert best + sum(p for _, p in rules.quizzes) == 100


def test_score_is_explained_item_by_item(content: Content):
    result = L.readiness(content.qualification, content, PROFILE, CORE_PASSED)
    points = {i.key: (i.points, i.max, i.answer) for i in result.items}
    assert points["iec"] == (15, 15, "yes")
    assert points["gst"] == (0, 10, "no")
    assert points["udyam"] == (0, 10, "not_sure")  # only a sure "yes" counts
    assert points["experience"] == (10, 20, "occasionally")
    assert points["turnover"] == (15, 15, "upto_10_crore")
    # Best quiz scores earn their share of the module's weight, rounded: 7×5/5, 7×4/5=5.6, 7×3/5=4.2.
    assert points["quiz:export_ready"] == (7, 7, "5/5")
    assert points["quiz:payments"] == (6, 7, "4/5")
    assert points["quiz:alibaba"] == (4, 7, "3/5")
    assert points["quiz:documents"] == (0, 1, "0/5")
    assert points["quiz:pricing"] == (0, 1, "0/5")
    assert result.score == 15 + 10 + 15 + 7 + 6 + 4 == 57
    assert result.missing_modules == ()
    assert result.qualifies


def test_qualifying_needs_the_threshold_and_every_required_module(content: Content):
    rules = content.qualification
    weak = {**PROFILE, "iec": "no", "experience": "never", "turnover": "under_40_lakh"}
    result = L.readiness(rules, content, weak, CORE_PASSED)
    assert result.score == 5 + 17 < rules.threshold and not result.qualifies
    missing_one = {"export_ready": passed(5), "payments": passed(5), "alibaba": ModuleProgress(best=3, passed=False)}
    strong = {**PROFILE, "gst": "yes", "udyam": "yes", "experience": "regularly"}
    result = L.readiness(rules, content, strong, missing_one)
    assert result.score >= rules.threshold
    assert result.missing_modules == ("alibaba",) and not result.qualifies
    assert L.readiness(rules, content, {}, {}).score == 0


def test_score_text_says_what_would_raise_it_biggest_gain_first(content: Content, catalogs: Catalogs):
    t = ctx(catalogs, "en", profile=PROFILE, progress=dict(CORE_PASSED), onboarded=True)
    text = L.score_text(t, content, content.qualification)
    lines = text.splitlines()
    assert lines[0] == "<b>Your export readiness: 57/100</b>"
    assert "✅ IEC: Yes · 15/15" in lines
    assert "➖ GST: No · 0/10" in lines
    assert "🔸 Export experience: Sometimes · 10/20" in lines
    assert "🔸 Quiz scores · 17/30" in lines
    tips = lines[lines.index("<b>What would raise it</b>") + 1 :]
    assert tips[0] == "• Register for GST (+10)"
    assert tips[1] == "• Register on Udyam: free and online (+10)"
    assert tips[2] == "• Take the “Winning on Alibaba.com” quiz again for a full score (up to +3)"
    assert not any("IEC" in tip for tip in tips)  # already earned
    assert lines[-1].startswith("🎉 You have reached 50.")


def test_score_text_in_hindi_and_the_next_step_when_not_qualified(content: Content, catalogs: Catalogs):
    progress = {"export_ready": passed(5)}
    small = {**PROFILE, "iec": "no", "gst": "yes", "udyam": "yes", "experience": "never", "turnover": "under_40_lakh"}
    t = ctx(catalogs, "hi", profile=small, progress=progress, onboarded=True)
    text = L.score_text(t, content, content.qualification)
    assert text.startswith("<b>आपकी एक्सपोर्ट तैयारी: 32/100</b>")
    assert "• dgft.gov.in पर IEC बनवाएँ: ₹500 फ़ीस, हमेशा के लिए (+15)" in text  # the fee is ₹500, not free
    assert "पूरे अंकों के लिए" not in text  # export_ready is already perfect
    assert "“भुगतान सुरक्षित कैसे पाएँ” का क्विज़ दें" in text
    last = text.splitlines()[-1]
    assert last.startswith("50 अंक होने") and DEVANAGARI.search(last)
    strong = ctx(catalogs, "en", profile={**PROFILE, "gst": "yes", "udyam": "yes", "experience": "regularly"},
                 progress={"export_ready": passed(5)}, onboarded=True)
    last = L.score_text(strong, content, content.qualification).splitlines()[-1]
    assert last == "Your score is enough. Pass Getting paid safely, Winning on Alibaba.com and a partner startup for your area will be introduced to you."


def test_the_iec_tip_states_the_fee_and_the_only_official_site(content: Content, catalogs: Catalogs):
    t = ctx(catalogs, "en", profile={**PROFILE, "iec": "no"}, progress=dict(CORE_PASSED), onboarded=True)
    tips = [line for line in L.score_text(t, content, content.qualification).splitlines() if line.startswith("• ") and "IEC" in line]
    assert tips == ["• Get an IEC on dgft.gov.in: ₹500 fee, valid for life (+15)"]


def test_score_command_in_the_engine(engine: Engine):
    new = Session(lang="en", flow="onboarding", step="owner_name", consent="given")
    turn = engine.handle(new, Inbound.say("/score"))
    assert turn.outputs[0].text == "Let's finish your profile first; the training opens right after."
    ready = Session(lang="hi", flow="menu", onboarded=True, consent="given", profile=PROFILE, progress=dict(CORE_PASSED))
    turn = engine.handle(ready, Inbound.say("/score"))
    assert turn.outputs[0].text.startswith("<b>आपकी एक्सपोर्ट तैयारी: 57/100</b>")
    assert turn.session.flow == "menu" and turn.events == []  # nothing changes; the menu is shown again
    assert "/score" in engine.texts.gettext("hi", engine.handle(ready, Inbound.say("/help")).outputs[0].text)


# ----------------------------------------------------------------- broken rules
@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    root = tmp_path / "conversations"
    shutil.copytree(default_content_dir(), root)
    return root


def broken(root: Path, change) -> ContentError:
    path = root / "qualification.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContentError) as info:
        load_content(root)
    return info.value


def test_weights_must_add_up_to_100(rules_copy: Path):
    error = broken(rules_copy, lambda d: d["registrations"].update(iec=20))
    assert str(error) == "conversations/qualification.yaml: qualification: the best possible score adds up to 105; the weights must add up to 100"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["experience"].update(sometimes=5), "field 'experience': 'sometimes' is not an answer of the 'experience' question"),
        (lambda d: d["turnover"].pop("above_10_crore"), "field 'turnover': gives no points for the answer 'above_10_crore'"),
        (lambda d: d["quizzes"].update(shipping_by_camel=2), "field 'quizzes': names module 'shipping_by_camel', which does not exist"),
        (lambda d: d.update(required_modules=["payment"]), "field 'required_modules': names module 'payment', which does not exist"),
        (lambda d: d["registrations"].update(phone=0), "field 'registrations': 'phone' is not an onboarding question with a 'yes' answer"),
        (lambda d: d.update(threshold=0), "field 'threshold': must be a whole number from 1 to 100"),
        (lambda d: d.update(treshold=50), "field 'treshold': is not a known field"),
        (lambda d: d.pop("quizzes"), "field 'quizzes': is missing"),
        (lambda d: d["registrations"].update(gst="ten"), "field 'registrations.gst': points must be whole numbers"),
    ],
)
def test_rule_errors_name_the_file_and_the_field(rules_copy: Path, change, message: str):
    error = broken(rules_copy, change)
    assert error.source == "conversations/qualification.yaml"
    assert message in str(error)


# ----------------------------------------------------------------- startups
def registry(content: Content, rows, source="startups.yaml") -> list[L.Startup]:
    flow = content.onboarding
    return L.build_startups(rows, source, states=[o.id for o in flow.step("state").options],
                            sectors=[o.id for o in flow.step("sector").options])


def test_the_demo_registry(content: Content):
    demo = registry(content, read_startup_rows(default_content_dir() / "startups.demo.yaml"))
    assert 4 <= len(demo) <= 6
    by_id = {s.id: s for s in demo}
    assert by_id["demo_moradabad_brass"].states == {"uttar_pradesh"}
    assert by_id["demo_tiruppur_knit"].languages == ("en",)
    assert by_id["demo_bharat_export"].states is None and by_id["demo_bharat_export"].sectors is None
    assert any(not s.active for s in demo)


def test_csv_cells_and_yaml_values_mean_the_same(content: Content):
    csv_row = {"id": "kanpur_leather", "name": "Kanpur Leather Desk", "states": "uttar_pradesh; delhi", "sectors": "leather",
               "languages": "hi", "weekly_capacity": "4", "active": "yes", "referral_code": ""}
    yaml_row = {"id": "kanpur_leather", "name": "Kanpur Leather Desk", "states": ["uttar_pradesh", "delhi"], "sectors": ["leather"],
                "languages": ["hi"], "weekly_capacity": 4, "active": True}
    assert registry(content, [csv_row]) == registry(content, [yaml_row])
    [everywhere] = registry(content, [{"id": "pan_india", "name": "Pan India", "states": "all", "sectors": "*", "active": "0"}])
    assert everywhere.states is None and everywhere.sectors is None and not everywhere.active
    assert everywhere.languages == ("hi", "en") and everywhere.weekly_capacity == 10


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x1", "name": "X", "states": ["up"]}, "startup 'x1', field 'states': 'up' is not one of the onboarding's states ids"),
        ({"id": "x1", "name": "X", "sectors": "brass"}, "field 'sectors': 'brass' is not one of the onboarding's sectors ids"),
        ({"id": "x1", "name": "X", "languages": ["ta"]}, "field 'languages': must name languages from hi, en"),
        ({"id": "x1", "name": "X", "weekly_capacity": -1}, "field 'weekly_capacity'"),
        ({"id": "X 1", "name": "X"}, "startup #1, field 'id'"),
        ({"id": "x1", "name": ""}, "field 'name'"),
        ({"id": "x1", "name": "X", "active": "maybe"}, "field 'active': must be true or false"),
        ({"id": "x1", "name": "X", "city": "Agra"}, "field 'city': is not a known field"),
        ({"id": "x1", "name": "X", "referral_code": "no spaces!"}, "field 'referral_code'"),
    ],
)
def test_registry_errors_name_the_startup_and_field(content: Content, row, message: str):
    with pytest.raises(ContentError) as info:
        registry(content, [row], "partners.csv")
    assert str(info.value).startswith("partners.csv: ")
    assert message in str(info.value)


def test_a_startup_id_used_twice(content: Content):
    with pytest.raises(ContentError, match="startup id 'a1' is used twice"):
        registry(content, [{"id": "a1", "name": "A"}, {"id": "a1", "name": "A again"}])


# ----------------------------------------------------------------- eligibility and choice
UP_CRAFTS = L.LeadFacts("uttar_pradesh", "handicrafts", "hi")


def startup(ident: str, *, states=None, sectors=None, languages=("hi", "en"), capacity=10, active=True) -> L.Startup:
    return L.Startup(ident, ident.title(), None if states is None else frozenset(states),
                     None if sectors is None else frozenset(sectors), tuple(languages), capacity, active)


def test_eligibility_active_state_sector_language():
    assert L.serves(startup("a"), UP_CRAFTS)
    assert L.serves(startup("a", states=["uttar_pradesh"], sectors=["handicrafts"], languages=["hi"]), UP_CRAFTS)
    assert not L.serves(startup("a", active=False), UP_CRAFTS)
    assert not L.serves(startup("a", states=["tamil_nadu"]), UP_CRAFTS)
    assert not L.serves(startup("a", sectors=["textiles_apparel"]), UP_CRAFTS)
    assert not L.serves(startup("a", languages=["en"]), UP_CRAFTS)


def test_lowest_share_of_weekly_capacity_wins():
    candidates = [
        L.Candidate(startup("big", capacity=10), offers_this_week=4, last_offered_at=100),  # 40 %
        L.Candidate(startup("small", capacity=2), offers_this_week=1, last_offered_at=50),  # 50 %
        L.Candidate(startup("mid", capacity=5), offers_this_week=1, last_offered_at=200),  # 20 %
        L.Candidate(startup("far", states=["kerala"]), offers_this_week=0),  # does not serve UP
        L.Candidate(startup("full", capacity=3), offers_this_week=3),  # at capacity
    ]
    assert L.choose_startup(UP_CRAFTS, candidates).id == "mid"
    assert [c.startup.id for c in L.eligible(UP_CRAFTS, candidates)] == ["big", "small", "mid"]
    # Without "mid", 40 % beats 50 % even though "small" was offered a lead longer ago.
    assert L.choose_startup(UP_CRAFTS, [c for c in candidates if c.startup.id != "mid"]).id == "big"
    assert L.choose_startup(UP_CRAFTS, candidates[3:]) is None


def test_ties_go_round_robin_to_the_least_recently_offered():
    caps = {"alpha": 10, "beta": 10, "gamma": 10}
    load = {k: 0 for k in caps}
    last: dict[str, int | None] = {k: None for k in caps}
    picks = []
    for now in range(1, 10):
        candidates = [L.Candidate(startup(k, capacity=c), load[k], last[k]) for k, c in caps.items()]
        chosen = L.choose_startup(UP_CRAFTS, candidates).id
        picks.append(chosen)
        load[chosen] += 1
        last[chosen] = now
    assert picks == ["alpha", "beta", "gamma"] * 3
    # Never offered either: the specialist (fewer states, then fewer sectors) before the all-India one.
    fresh = [L.Candidate(startup("a_all_india")), L.Candidate(startup("m_two", states=["uttar_pradesh", "delhi"])),
             L.Candidate(startup("z_local", states=["uttar_pradesh"], sectors=["handicrafts", "leather"])),
             L.Candidate(startup("y_local", states=["uttar_pradesh"], sectors=["handicrafts"]))]
    assert L.choose_startup(UP_CRAFTS, fresh).id == "y_local"
    assert L.choose_startup(UP_CRAFTS, fresh[:3]).id == "z_local"
    assert L.choose_startup(UP_CRAFTS, fresh[:2]).id == "m_two"
    # Equal shares at different capacities are still a tie: 1/2 == 5/10; the one offered longer ago wins.
    tie = [L.Candidate(startup("x", capacity=10), 5, 300), L.Candidate(startup("y", capacity=2), 1, 100)]
    assert L.choose_startup(UP_CRAFTS, tie).id == "y"


def test_referral_first_even_over_capacity_area_and_sector():
    referrer = startup("ref", states=["tamil_nadu"], sectors=["textiles_apparel"], capacity=2)
    candidates = [L.Candidate(referrer, offers_this_week=9), L.Candidate(startup("local", states=["uttar_pradesh"]))]
    assert L.choose_startup(UP_CRAFTS, candidates, referral="ref").id == "ref"
    # Once the referrer has had the lead (declined or let it lapse), the ordinary rules apply.
    assert L.choose_startup(UP_CRAFTS, candidates, referral="ref", offered={"ref"}).id == "local"


def test_inactive_or_unknown_referral_startup_is_ignored():
    candidates = [L.Candidate(startup("ref", active=False)), L.Candidate(startup("local", states=["uttar_pradesh"]), 5)]
    assert L.choose_startup(UP_CRAFTS, candidates, referral="ref").id == "local"
    assert L.choose_startup(UP_CRAFTS, candidates, referral="nobody").id == "local"


def test_never_offered_twice_to_the_same_startup():
    candidates = [L.Candidate(startup("a")), L.Candidate(startup("b"))]
    assert L.choose_startup(UP_CRAFTS, candidates, offered={"a"}).id == "b"
    assert L.choose_startup(UP_CRAFTS, candidates, offered={"a", "b"}) is None


# ----------------------------------------------------------------- a lead's life
def test_status_changes_allowed_and_refused():
    assert L.next_status("offered", "acc") == "accepted"
    assert L.next_status("offered", "dec") == "declined"
    assert L.next_status("offered", "con") is None  # accept first
    assert L.next_status("accepted", "con") == "contacted"
    assert L.next_status("accepted", "lst") == "listed"  # a step may be skipped
    assert L.next_status("contacted", "ord") == "first_order"
    assert L.next_status("listed", "con") is None  # never backwards
    assert L.next_status("listed", "lost") == "lost"
    assert L.next_status("accepted", "acc") is None
    assert L.next_status("accepted", "dec") is None  # too late to decline
    for final in ("first_order", "lost", "withdrawn", "unassigned"):
        assert L.actions_for(final) == ()
        assert all(L.next_status(final, a) is None for a in ("acc", "dec", "con", "lst", "ord", "lost"))
    assert L.actions_for("offered") == ("acc", "dec")
    assert L.actions_for("accepted") == ("con", "lst", "ord", "lost")
    assert L.actions_for("listed") == ("ord", "lost")


def test_lead_buttons_fit_telegram():
    assert L.payload(123456789, "lost.not_interested") == "ld:123456789:lost.not_interested"
    assert len(L.payload(10**18 - 1, "lost.not_interested").encode()) <= 64
    assert L.page_payload("lost", 3) == "ls:lost:3"


def test_every_button_label_fits_whatsapp_in_both_languages(catalogs: Catalogs):
    for msgid in L.BUTTON_LABELS:
        for lang in ("en", "hi"):
            label = catalogs.gettext(lang, msgid)
            assert len(label) <= 20, (lang, label)
        assert catalogs.has("hi", msgid), msgid


# ----------------------------------------------------------------- the card and /leads
def test_lead_card_shows_everything_the_startup_needs(content: Content, catalogs: Catalogs):
    result = L.readiness(content.qualification, content, PROFILE, CORE_PASSED)
    view = L.LeadView(7, "offered", result.score, result.items, PROFILE, ("export_ready", "payments", "alibaba"), True, 48)
    card = L.lead_card(ctx(catalogs, "en"), content, view)
    text = card.text
    for piece in (
        "🆕 <b>Lead #7</b> · New: waiting for your answer",
        "🏭 <b>Kumar Brass &amp; Sons &lt;Moradabad&gt;</b>",  # user text is escaped
        "👤 Ramesh Kumar",
        "📍 Moradabad, Uttar Pradesh",
        "📦 Handicrafts",
        "🧾 IEC: Yes · GST: No · Udyam registration: Not sure",
        "📞 +91 98765 43210",
        "⭐ Readiness 57/100:",
        "🔸 Export experience: Sometimes · 10/20",
        "📚 Modules passed: Get export-ready, Getting paid safely, Winning on Alibaba.com",
        "🔗 This owner came through your referral link.",
        "within 48 hours",
    ):
        assert piece in text, piece
    assert [(c.id, c.label) for c in card.choices] == [("ld:7:acc", "Accept"), ("ld:7:dec", "Decline")]
    hindi = L.lead_card(ctx(catalogs, "hi"), content, view)
    assert "🆕 <b>लीड #7</b>" in hindi.text and "📍 Moradabad, उत्तर प्रदेश" in hindi.text
    assert [c.label for c in hindi.choices] == ["स्वीकार करें", "मना करें"]
    accepted = L.lead_card(ctx(catalogs, "en"), content, L.LeadView(7, "accepted", 59, result.items, PROFILE))
    assert [c.id for c in accepted.choices] == ["ld:7:con", "ld:7:lst", "ld:7:ord", "ld:7:lost"]
    assert "within 48 hours" not in accepted.text and "Modules passed: none" in accepted.text


def test_leads_page_buttons(content: Content, catalogs: Catalogs):
    rows = [L.LeadRow(i, "offered", 60, {**PROFILE, "business_name": f"Firm {i}"}) for i in (9, 8, 7, 6, 5)]
    say = L.leads_page(ctx(catalogs, "en"), content, "Pital Nagri", rows, status_filter="all", page=0, pages=2,
                       referrals=L.ReferralFunnel(3, 2, 1, 1))
    assert isinstance(say, Say)
    assert say.text.startswith("<b>Pital Nagri</b>: your leads · All · page 1 of 2")
    assert "Owners who came through your referral link: 3; profile done: 2; core modules passed: 1; leads: 1." in say.text
    ids = [c.id for c in say.choices]
    assert ids[:5] == ["ld:9:view", "ld:8:view", "ld:7:view", "ld:6:view", "ld:5:view"]
    assert "ls:all:1" in ids and "ls:all:-1" not in ids and not any(i.startswith("ls:all:") and i != "ls:all:1" for i in ids)
    assert {"ls:accepted:0", "ls:lost:0", "ls:offered:0"} <= set(ids)
    last = L.leads_page(ctx(catalogs, "en"), content, "P", [], status_filter="lost", page=1, pages=2, referrals=L.ReferralFunnel())
    assert "No leads here yet." in last.text
    assert "ls:lost:0" in [c.id for c in last.choices] and "ls:all:0" in [c.id for c in last.choices]
    assert all(len(c.label) <= 20 for c in say.choices)


def test_staff_taps_are_decided_by_pure_rules():
    decide, me = L.decide_staff_tap, "up_brass"
    assert decide("acc", "offered", me, me).kind == "accept"
    assert (decide("dec", "offered", me, me).kind, decide("dec", "offered", me, me).reason) == ("ask_reason", "dec")
    assert decide("dec.busy", "offered", me, me) == L.StaffDecision("decline", target="declined", reason="busy")
    assert decide("dec.bogus", "offered", me, me) == L.StaffDecision("refuse", "stale")
    assert decide("acc", "offered", "up_ganga", me) == L.StaffDecision("refuse", "not_yours")
    assert decide("acc", None, None, me) == L.StaffDecision("refuse", "not_yours")
    assert decide("con", "offered", me, me) == L.StaffDecision("refuse", "not_now")
    listed = decide("lst", "contacted", me, me)
    assert listed == L.StaffDecision("advance", target="listed") and listed.undoable
    assert not decide("acc", "offered", me, me).undoable
    moves = [(1, "offered", 0), (2, "accepted", 100), (3, "contacted", 200), (4, "listed", 1000)]
    assert decide("undo.4", "listed", me, me, moves, now=1000 + L.UNDO_SECONDS) == L.StaffDecision("undo", target="contacted", move_id=4)
    assert decide("undo.4", "listed", me, me, moves, now=1001 + L.UNDO_SECONDS).why == "too_late"  # ten minutes passed
    assert decide("undo.3", "listed", me, me, moves, now=1001).why == "too_late"  # not the last step
    assert decide("undo.2", "accepted", me, me, moves[:2], now=101).why == "too_late"  # accepting is never undone
    assert decide("undo.x", "listed", me, me, moves, now=1001).why == "stale"
