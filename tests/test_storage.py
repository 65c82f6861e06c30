"""Storage on a real SQLite file: migrations, resuming after a restart, erasure, backup, concurrency."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import Settings
from bot.core.content import Content
from bot.core.messages import Inbound, Say
from bot.services.clock import ManualClock
from bot.services.locks import KeyedLocks
from bot.storage.db import Database, migrations, schema_version
from bot.core.messages import UserKey

OWNER_NAME = "Zebunnisa Qureshi"
BUSINESS = "Zebunnisa Brassware"
PHONE_TYPED = "98765 43210"
PHONE_DIGITS = "9876543210"


# ----------------------------------------------------------------- helpers
class Owner:
    """One owner talking to the conversation service of an app."""

    def __init__(self, app: App, ref: str = "owner-1"):
        self.app = app
        self.key = UserKey("telegram", ref)
        self.outputs: list = []

    async def send(self, inbound: Inbound, update_id: str | None = None):
        reply = await self.app.conversations.handle(self.key, inbound, update_id=update_id, lang_hint="en")
        if reply is not None:
            self.outputs = reply.outputs
        return reply

    async def say(self, text: str, update_id: str | None = None):
        return await self.send(Inbound.say(text), update_id)

    def payload(self, label: str) -> str:
        choices = [c for o in self.outputs if isinstance(o, Say) for c in o.choices]
        found = [c.id for c in choices if c.label == label] or [c.id for c in choices if label in c.label]
        assert found, f"no button {label!r} among {[c.label for c in choices]}"
        return found[-1]

    async def tap(self, label: str):
        return await self.send(Inbound.tap(self.payload(label)))

    @property
    def text(self) -> str:
        return "\n".join(o.text for o in self.outputs if isinstance(o, Say))

    def answer_payload(self, content: Content, module_id: str, question_index: int, correct: bool) -> str:
        question = content.module(module_id).quiz[question_index]
        wanted = question.correct if correct else next(o for o in question.options if not o.correct)
        choices = [c.id for o in self.outputs if isinstance(o, Say) for c in o.choices if c.id.endswith(":a." + wanted.id)]
        assert len(choices) == 1, self.outputs
        return choices[0]


FIRST_STEPS = ["/start", "2", "yes", OWNER_NAME, BUSINESS]
REST_STEPS = ["UP", "Moradabad", "1", "1", "2", "1", "1", "1", "1, 2", PHONE_TYPED]


async def onboard(owner: Owner) -> None:
    for text in FIRST_STEPS + REST_STEPS + ["1"]:
        await owner.say(text)


async def take_quiz(owner: Owner, content: Content, module_id: str, right: int) -> None:
    for index in range(len(content.module(module_id).quiz)):
        await owner.send(Inbound.tap(owner.answer_payload(content, module_id, index, correct=index < right)))


async def read_to_quiz(owner: Owner, content: Content, module_id: str) -> None:
    await owner.send(Inbound.tap(f"go:{module_id}"))
    for _ in content.module(module_id).lessons:
        await owner.say("next")


async def profile_of(app: App, ref: str) -> dict:
    row = await app.db.fetchone("SELECT profile FROM users WHERE channel = 'telegram' AND user_ref = ?", (ref,))
    return json.loads(row["profile"])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "saathi.sqlite3"


@pytest.fixture
async def app(store: dict) -> AsyncIterator[App]:
    """The app on a fresh database: the SQLite file, and again on PostgreSQL (the ``store`` fixture)."""
    app = await build_app(Settings(**store), clock=ManualClock())
    app.store = store  # type: ignore[attr-defined] - what ``reopen`` opens again
    yield app
    await app.close()


async def reopen(app: App, db_path: Path) -> App:
    """Close ``app`` (a bot restart an hour later, within every update-id window) and build a new one on the same database."""
    await app.close()
    store = getattr(app, "store", {"database_path": db_path})
    app = await build_app(Settings(**store), clock=ManualClock(start=1_780_003_600))
    app.store = store  # type: ignore[attr-defined]
    return app


# ----------------------------------------------------------------- schema
async def test_open_applies_every_migration_in_wal_mode(db_path: Path):
    db = await Database.open(db_path)
    try:
        assert schema_version() == len(migrations()) >= 1
        assert await db.version() == schema_version()
        mode = await db.fetchone("PRAGMA journal_mode")
        assert mode[0] == "wal"
        tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"users", "progress", "quiz_answers", "events", "seen_updates"} <= tables
    finally:
        await db.close()
    # Opening again changes nothing.
    db = await Database.open(db_path)
    try:
        assert await db.version() == schema_version()
    finally:
        await db.close()


@pytest.mark.parametrize("start", range(0, schema_version()))
async def test_upgrade_from_every_earlier_version(tmp_path: Path, start: int):
    path = tmp_path / f"v{start}.sqlite3"
    db = await Database.open(path, migrate=False)
    assert await db.version() == 0
    assert await db.migrate(target=start) == start
    await db.close()
    db = await Database.open(path)
    try:
        assert await db.version() == schema_version()
        await db.execute(
            "INSERT INTO users (channel, user_ref, first_seen_at, last_seen_at) VALUES ('console', 'x', 1, 1)"
        )
        assert (await db.fetchone("SELECT count(*) FROM users"))[0] == 1
    finally:
        await db.close()


# ----------------------------------------------------------------- resuming
async def test_half_way_onboarding_resumes_after_a_restart(app: App, db_path: Path):
    owner = Owner(app)
    for text in FIRST_STEPS:
        await owner.say(text)
    assert "Which state" in owner.text
    state_button = owner.payload("Gujarat")

    app = await reopen(app, db_path)
    try:
        owner = Owner(app)
        await owner.say("/start")
        assert "Welcome back" in owner.text and "Which state" in owner.text
        # Buttons sent before the restart still count.
        await owner.send(Inbound.tap(state_button))
        assert "Which district" in owner.text
        profile = await profile_of(app, "owner-1")
        assert profile == {"owner_name": OWNER_NAME, "business_name": BUSINESS, "state": "gujarat"}
        row = await app.db.fetchone("SELECT lang, consent, consent_version, consent_lang FROM users")
        assert tuple(row) == ("en", "given", 1, "en")
    finally:
        await app.close()


async def test_a_repeated_update_is_ignored(app: App, db_path: Path):
    owner = Owner(app)
    await owner.say("/start", update_id="1")
    await owner.say("2", update_id="2")
    await owner.say("yes", update_id="3")
    reply = await owner.say("Asha", update_id="4")
    assert reply is not None
    assert await owner.say("Someone else", update_id="4") is None
    assert await owner.send(Inbound.say("/delete_my_data"), update_id="4") is None
    assert await profile_of(app, "owner-1") == {"owner_name": "Asha"}
    app = await reopen(app, db_path)
    try:
        owner = Owner(app)
        assert await owner.say("Again", update_id="4") is None  # remembered across a restart
        assert await owner.say("Asha Exports", update_id="5") is not None
        assert await profile_of(app, "owner-1") == {"owner_name": "Asha", "business_name": "Asha Exports"}
        # The same update id on another channel is a different update.
        other = Owner(app, "owner-2")
        other.key = UserKey("console", "owner-2")
        assert await other.say("/start", update_id="4") is not None
    finally:
        await app.close()


async def test_quiz_answers_are_stored_with_their_attempt(app: App):
    content = app.engine.content
    owner = Owner(app)
    await onboard(owner)
    await read_to_quiz(owner, content, "export_ready")
    await take_quiz(owner, content, "export_ready", right=2)
    await owner.tap("Quiz again")
    await take_quiz(owner, content, "export_ready", right=5)
    rows = await app.db.fetchall("SELECT attempt, question_id, correct FROM quiz_answers WHERE module_id = 'export_ready'")
    quiz = content.module("export_ready").quiz
    by_attempt = {a: {r["question_id"]: r["correct"] for r in rows if r["attempt"] == a} for a in (1, 2)}
    assert by_attempt[1] == {q.id: int(i < 2) for i, q in enumerate(quiz)}
    assert by_attempt[2] == {q.id: 1 for q in quiz}
    assert len(rows) == 10
    progress = await app.db.fetchone("SELECT attempt, best, passed, in_quiz, passed_at FROM progress WHERE module_id = 'export_ready'")
    assert (progress["attempt"], progress["best"], progress["passed"], progress["in_quiz"]) == (2, 5, 1, 0)
    assert progress["passed_at"] is not None
    kinds = [r[0] for r in await app.db.fetchall("SELECT kind FROM events ORDER BY id")]
    assert kinds.count("module_passed") == 1 and kinds.count("quiz_finished") == 2
    assert "quiz_answer" not in kinds  # answers live in quiz_answers, not the event log


async def test_quiz_answers_after_a_restart_are_stored(app: App):
    content = app.engine.content
    owner = Owner(app)
    await onboard(owner)
    await read_to_quiz(owner, content, "export_ready")
    await take_quiz(owner, content, "export_ready", right=0)
    await owner.say("/restart")
    await owner.say("yes")
    await onboard(owner)
    await read_to_quiz(owner, content, "export_ready")
    await take_quiz(owner, content, "export_ready", right=5)
    progress = await app.db.fetchone("SELECT attempt, best FROM progress WHERE module_id = 'export_ready'")
    assert tuple(progress) == (1, 5)
    rows = await app.db.fetchall("SELECT attempt, correct FROM quiz_answers WHERE module_id = 'export_ready' AND attempt = 1")
    assert [r["correct"] for r in rows] == [1] * 5


async def test_progress_survives_a_restart_mid_lesson_and_mid_quiz(app: App, db_path: Path):
    content = app.engine.content
    module = content.module("export_ready")
    owner = Owner(app)
    await onboard(owner)
    await owner.send(Inbound.tap("go:export_ready"))
    await owner.tap("Next")
    await owner.tap("Next")
    assert f"3/{len(module.lessons)}" in owner.text

    app = await reopen(app, db_path)
    owner = Owner(app)
    await owner.say("/start")
    assert f"3/{len(module.lessons)}" in owner.text and module.lessons[2].text in owner.text
    for _ in range(len(module.lessons) - 2):
        await owner.say("next")
    assert module.quiz[0].text in owner.text
    await owner.send(Inbound.tap(owner.answer_payload(content, "export_ready", 0, correct=True)))
    await owner.send(Inbound.tap(owner.answer_payload(content, "export_ready", 1, correct=False)))
    assert module.quiz[2].text in owner.text

    app = await reopen(app, db_path)
    try:
        owner = Owner(app)
        await owner.say("/start")
        assert module.quiz[2].text in owner.text
        assert module.quiz[1].text not in owner.text
        for index in range(2, len(module.quiz)):
            await owner.send(Inbound.tap(owner.answer_payload(content, "export_ready", index, correct=True)))
        assert "You got 4 of 5." in owner.text and "Passed" in owner.text
        row = await app.db.fetchone("SELECT best, passed, lesson FROM progress WHERE module_id = 'export_ready'")
        assert tuple(row) == (4, 1, len(module.lessons))
    finally:
        await app.close()


# ----------------------------------------------------------------- erasure and backup
async def every_text_value(db: Database) -> list[tuple[str, str]]:
    """``(table, value)`` for every text value in every table."""
    found = []
    tables = await db.tables()
    assert "users" in tables and "events" in tables
    for table in tables:
        for row in await db.fetchall(f'SELECT * FROM "{table}"'):
            found += [(table, str(v)) for v in tuple(row) if isinstance(v, (str, bytes))]
    return found


async def test_delete_my_data_leaves_no_trace_of_name_or_phone(app: App):
    content = app.engine.content
    owner = Owner(app)
    await owner.say("/start ref_partner1")
    for text in FIRST_STEPS[1:] + REST_STEPS + ["1"]:
        await owner.say(text)
    await read_to_quiz(owner, content, "export_ready")
    await take_quiz(owner, content, "export_ready", right=5)
    bystander = Owner(app, "owner-2")
    await onboard(bystander)  # someone else with the same answers, who is not erased

    values = await every_text_value(app.db)
    assert any(OWNER_NAME in v for _, v in values) and any(PHONE_DIGITS in v for _, v in values)

    await owner.say("/delete_my_data")
    await owner.say("no")
    assert (await profile_of(app, "owner-1"))["owner_name"] == OWNER_NAME
    await owner.say("/delete_my_data")
    await owner.tap("Yes")
    assert "deleted" in owner.text

    owner_id = (await app.db.fetchone("SELECT id FROM users WHERE user_ref = 'owner-1'"))[0]
    leftovers = []
    for table in await app.db.tables():
        columns = await app.db.columns(table)
        if "user_id" not in columns and table != "users":
            continue
        where = "id = ?" if table == "users" else "user_id = ?"
        for row in await app.db.fetchall(f'SELECT * FROM "{table}" WHERE {where}', (owner_id,)):
            for value in tuple(row):
                if isinstance(value, str) and (OWNER_NAME in value or BUSINESS in value or PHONE_DIGITS in value
                                               or "partner1" in value or "Moradabad" in value):
                    leftovers.append((table, value))
    assert leftovers == []
    user = await app.db.fetchone("SELECT profile, consent, consent_at, onboarded_at, referral_code FROM users WHERE id = ?", (owner_id,))
    assert tuple(user) == ("{}", "", None, None, None)
    for table in ("progress", "quiz_answers"):
        assert (await app.db.fetchone(f"SELECT count(*) FROM {table} WHERE user_id = ?", (owner_id,)))[0] == 0
    kinds = [r[0] for r in await app.db.fetchall("SELECT kind FROM events WHERE user_id = ?", (owner_id,))]
    assert kinds == ["data_deleted"]
    # The bystander's data is untouched, and the owner's name and phone appear nowhere else.
    assert (await profile_of(app, "owner-2"))["owner_name"] == OWNER_NAME
    await bystander.say("/delete_my_data")
    await bystander.say("haan")
    assert [(t, v) for t, v in await every_text_value(app.db) if OWNER_NAME in v or PHONE_DIGITS in v] == []
    # The chat keeps working: the next message starts afresh.
    await owner.say("hello")
    assert "Choose your language" in owner.text


def table_rows(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the file copy; PostgreSQL's is pg_dump
async def test_backup_copies_every_row(app: App, db_path: Path, tmp_path: Path):
    content = app.engine.content
    owners = [Owner(app, f"owner-{i}") for i in range(3)]
    for owner in owners:
        await onboard(owner)
    await read_to_quiz(owners[0], content, "export_ready")
    await take_quiz(owners[0], content, "export_ready", right=3)
    target = tmp_path / "backup" / "copy.sqlite3"
    target.parent.mkdir()
    await app.db.backup(target)
    copied = table_rows(target)
    assert copied["users"] and len(copied["users"]) == 3
    assert len(copied["quiz_answers"]) == 5
    assert copied == table_rows(db_path)
    backup_db = await Database.open(target, migrate=False)
    try:
        assert await backup_db.version() == schema_version()
    finally:
        await backup_db.close()


# ----------------------------------------------------------------- concurrency
async def test_fifty_owners_at_once(app: App):
    async def one(i: int) -> None:
        owner = Owner(app, f"user-{i}")
        for text in ["/start", "2", "yes", f"Owner {i}", f"Business {i}", "Bihar", f"Town {i}", str(i % 12 + 1)]:
            await owner.say(text)

    await asyncio.gather(*(one(i) for i in range(50)))
    rows = await app.db.fetchall("SELECT user_ref, profile, consent, lang FROM users")
    assert len(rows) == 50
    sectors = [s.id for s in app.engine.content.onboarding.step("sector").options]
    for row in rows:
        i = int(row["user_ref"].split("-")[1])
        assert json.loads(row["profile"]) == {
            "owner_name": f"Owner {i}", "business_name": f"Business {i}", "state": "bihar",
            "district": f"Town {i}", "sector": sectors[i % 12],
        }
        assert (row["consent"], row["lang"]) == ("given", "en")
    consents = await app.db.fetchone("SELECT count(*) FROM events WHERE kind = 'consent_given'")
    assert consents[0] == 50
    assert len(app.conversations.locks) == 0


async def test_one_owners_messages_sent_at_once_are_handled_in_order(app: App):
    key = UserKey("telegram", "hasty")
    messages = ["/start", "2", "yes", "Asha", "Asha Brass", "UP", "Agra", "1", "haan", "nahi"]
    replies = await asyncio.gather(*(app.conversations.handle(key, Inbound.say(m)) for m in messages))
    assert all(r is not None for r in replies)
    assert await profile_of(app, "hasty") == {
        "owner_name": "Asha", "business_name": "Asha Brass", "state": "uttar_pradesh",
        "district": "Agra", "sector": "handicrafts", "udyam": "yes", "iec": "no",
    }
    # Each reply answers its own message: the reply to "Asha" asks for the business name.
    assert "name of your business" in replies[3].outputs[-1].text
    assert "Which district" in replies[5].outputs[-1].text
    assert len(app.conversations.locks) == 0


async def test_keyed_locks_serialise_one_key_in_order_and_forget_it():
    locks = KeyedLocks()
    log: list[tuple[str, int]] = []

    async def work(key: str, n: int) -> None:
        async with locks.hold(key):
            log.append((key, n))
            await asyncio.sleep(0)
            log.append((key, n))

    await asyncio.gather(*(work(k, n) for n in range(10) for k in ("a", "b")))
    for key in ("a", "b"):
        mine = [n for k, n in log if k == key]
        assert mine == [n for n in range(10) for _ in (0, 1)]  # FIFO, never interleaved
    assert len(locks) == 0

    with pytest.raises(RuntimeError):
        async with locks.hold("c"):
            raise RuntimeError("boom")
    assert len(locks) == 0


async def test_a_start_handled_by_the_roles_is_not_overtaken_by_the_next_message(tmp_path):
    """Roles look things up before the owner conversation; a later message must still wait its turn."""
    import asyncio

    from bot.app import build_app
    from bot.config import Settings
    from bot.core.messages import Inbound
    from bot.services.dispatch import Who
    from bot.core.messages import UserKey

    app = await build_app(Settings(database_path=tmp_path / "order.sqlite3"))
    try:
        who = Who(UserKey("telegram", "77"), platform_user_id=77, lang_hint="en")
        first, second = await asyncio.gather(
            app.dispatcher.handle(who, Inbound.say("/start")), app.dispatcher.handle(who, Inbound.say("English"))
        )
        assert "Choose your language" in first.outputs[0].text
        assert any("agree" in getattr(o, "text", "") for o in second.outputs)  # "English" answered the language question
        assert len(app.dispatcher.order) == 0
    finally:
        await app.close()
