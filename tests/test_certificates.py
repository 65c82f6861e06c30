"""The certificate: earned with the required modules, sent as a picture, checkable, revoked by erasure."""

from __future__ import annotations

import io
import json
import re

from PIL import Image, ImageFont

from bot import cli, pictures
from bot.channels.render import plain
from bot.services.certificates import normalise_code
from tests.test_leads_e2e import Harness, h, qualify, rows, seed_owner  # noqa: F401 - h is the fixture

CODE = re.compile(r"/verify ([0-9A-Z]{5}-[0-9A-Z]{5})")
HINDI_PROFILE = {
    "owner_name": "रमेश कुमार", "business_name": "मुरादाबाद ब्रास वर्क्स", "state": "uttar_pradesh",
    "district": "Moradabad", "sector": "handicrafts", "udyam": "yes", "iec": "yes", "gst": "yes",
    "experience": "occasionally", "turnover": "upto_1_5_crore", "markets": ["europe"], "phone": "+919876543210",
}


async def test_passing_the_required_modules_sends_a_certificate_anyone_can_check_until_erased(h: Harness):
    await qualify(h, 301, lang="hi", profile=HINDI_PROFILE)
    photo = await h.api.wait_for_message(301, lambda m: m.kind == "photo")
    assert "आपका सर्टिफ़िकेट" in photo.caption
    code = CODE.search(photo.caption).group(1)
    image = Image.open(io.BytesIO(photo.photo))
    assert image.size == (1200, 850)
    [stored] = await rows(h.app, "SELECT * FROM certificates")
    assert (stored["code"], stored["owner_name"], stored["lang"]) == (code, "रमेश कुमार", "hi")
    assert set(json.loads(stored["modules"])) >= {"export_ready", "payments", "alibaba"}

    # A buyer checks it, typing the code in small letters and with an O for the zero.
    h.api.add_user(302, first_name="Buyer", language_code="en")
    h.api.send_text(302, "/verify " + code.lower().replace("0", "o"))
    answer = await h.api.wait_for_message(302)
    assert f"Certificate {code} is valid." in answer.text
    assert "रमेश कुमार (मुरादाबाद ब्रास वर्क्स)" in answer.text
    assert "Get export-ready" in answer.text and "Winning on Alibaba.com" in answer.text

    h.api.send_text(302, "/verify ABCDE-FGHJK")
    assert "No certificate has the code" in (await h.api.wait_for_message(302)).text
    h.api.send_text(302, "/verify")
    assert "/verify and its code" in (await h.api.wait_for_message(302)).text

    # The owner asks for it again: the same code, drawn again.
    h.api.send_text(301, "/certificate")
    again = await h.api.wait_for_message(301, lambda m: m.kind == "photo" and m.message_id != photo.message_id)
    assert code in again.caption

    # Erasure revokes it: the check says so and names no one; no row keeps the name.
    h.api.send_text(301, "/delete_my_data")
    await h.api.wait_for_message(301)
    h.api.send_text(301, "हाँ")
    await h.api.wait_for_message(301, lambda m: "मिटा" in (m.text or ""))
    h.api.send_text(302, "/verify " + code)
    withdrawn = await h.api.wait_for_message(302)
    assert "withdrawn" in withdrawn.text and "रमेश" not in withdrawn.text
    [revoked] = await rows(h.app, "SELECT * FROM certificates")
    assert revoked["owner_name"] == "" and revoked["business_name"] == "" and revoked["revoked_at"] is not None


async def test_a_certificate_a_crash_left_unissued_is_issued_once_by_the_catch_up(h: Harness):
    h.api.add_user(311, first_name="Owner", language_code="en")
    user_id = await seed_owner(h.app, 311, finished=True)  # passed, but no turn emitted the event
    assert await rows(h.app, "SELECT * FROM certificates") == []
    assert await h.app.certificates.catch_up() == 1
    assert await h.app.certificates.catch_up() == 0
    [stored] = await rows(h.app, "SELECT * FROM certificates")
    assert stored["user_id"] == user_id and stored["owner_name"]
    photo = await h.api.wait_for_message(311, lambda m: m.kind == "photo")
    assert stored["code"] in photo.caption
    await h.api.wait_idle(quiet=0.2)
    assert [m.kind for m in h.api.messages(311)] == ["photo"]


async def test_an_owner_without_the_modules_is_told_what_earns_it(h: Harness):
    h.api.add_user(321, first_name="New", language_code="en")
    await seed_owner(h.app, 321)  # two of the three required modules
    h.api.send_text(321, "/certificate")
    text = (await h.api.wait_for_message(321)).text
    assert "You get your certificate when you pass these modules:" in text and "Winning on Alibaba.com" in text
    assert await rows(h.app, "SELECT * FROM certificates") == []


def test_saathi_verify_prints_whose_it_is(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["verify", "ABCDE-12345"]) == 1
    assert "No certificate has the code" in capsys.readouterr().out


def test_codes_are_read_forgivingly():
    assert normalise_code(" 7kq2m-9xd4a ") == "7KQ2M-9XD4A"
    assert normalise_code("7KQ2M9XD4A") == "7KQ2M-9XD4A"
    assert normalise_code("OIL23-45678") == "01123-45678"


def test_hindi_is_shaped_not_drawn_letter_by_letter(monkeypatch):
    shaped = pictures.font(40, script="Devanagari")
    unshaped = ImageFont.truetype(str(pictures.FONTS / "NotoSansDevanagari-Regular.ttf"), 40, layout_engine=ImageFont.Layout.BASIC)
    # क्ष is one conjunct when shaped; unshaped it is क, a visible virama and ष side by side.
    assert shaped.getlength("क्ष") < 0.8 * unshaped.getlength("क्ष")
    # A line mixing the scripts is cut into runs, each drawn in a font that has its letters.
    assert pictures.runs("IEC का नंबर: 123") == [("", "IEC "), ("Devanagari", "का नंबर: 123")]
    assert [script for script, _ in pictures.runs("முருகன் Exports")] == ["Tamil", ""]  # a Tiruppur owner's name
    monkeypatch.setattr(pictures.features, "check", lambda name: False)
    try:
        pictures.Canvas.new(10, 10)
    except pictures.ShapingUnavailable:
        pass
    else:
        raise AssertionError("a Pillow without libraqm must refuse to draw Hindi")


async def test_a_lesson_diagram_arrives_as_a_picture_in_the_owners_language_and_the_outbox_keeps_only_its_name(h: Harness):
    from bot.core.messages import Event, UserKey
    from bot.core.session import ModuleProgress, Session

    h.api.add_user(331, first_name="Owner", language_code="hi")
    store = h.app.conversations.store
    loaded = await store.load(UserKey("telegram", "331"), new_session=Session(lang="hi"), now=int(h.app.clock.now()))
    lessons = [lesson.id for lesson in h.app.engine.content.module("shipping").lessons]
    before = lessons.index("forwarder_broker") - 1
    after = Session(lang="hi", flow="lesson", step="shipping", seq=5, profile={"owner_name": "Ravi"}, consent="given", onboarded=True,
                    progress={"export_ready": ModuleProgress(lesson=6, attempt=1, best=5, passed=True),
                              "shipping": ModuleProgress(lesson=before)})
    await store.save_turn(loaded.user_id, loaded.session, after, [Event("consent_given", {"version": 1, "lang": "hi"})],
                          now=int(h.app.clock.now()), channel="telegram")
    h.api.send_text(331, "आगे")
    picture = await h.api.wait_for_message(331, lambda m: m.kind == "photo")
    lesson = await h.api.wait_for_message(331, lambda m: m.message_id > picture.message_id and (m.text or "").strip() != "")
    assert "फ़ॉरवर्डर" in picture.caption  # the caption in Hindi
    assert Image.open(io.BytesIO(picture.photo)).size[0] > 1000
    module = h.app.engine.content.module("shipping")
    heading = h.app.texts.gettext("hi", module.lessons[before + 1].text).splitlines()[0]
    assert plain(heading) in lesson.text  # the lesson itself follows its picture

    # The outbox keeps the picture's name, never its bytes: every owner reading the lesson would
    # otherwise store its own copy.
    from bot.core.messages import Photo
    from bot.storage.outbox import dump_reply, load_reply

    payload = dump_reply(Photo(b"", "caption", "shipping.forwarder_broker.png", ref="shipping.forwarder_broker"), lang="hi")
    assert '"data"' not in payload and len(payload) < 200
    assert load_reply(payload)[0].ref == "shipping.forwarder_broker"


async def test_an_erasure_while_the_certificate_is_drawn_wins(h: Harness):
    from bot.services.certificates import new_code
    from bot.storage.certificates import Certificate

    h.api.add_user(341, first_name="Owner", language_code="en")
    user_id = await seed_owner(h.app, 341, finished=True)
    repo = h.app.certificates.repo
    holder = await repo.holder(user_id)  # read before drawing …
    h.api.send_text(341, "/delete_my_data")
    await h.api.wait_for_message(341)
    h.api.send_text(341, "yes")
    await h.api.wait_for_message(341, lambda m: "deleted" in (m.text or ""))
    certificate = Certificate(new_code(), "en", holder.owner_name, holder.business_name, holder.passed, 0)
    assert await repo.issue(certificate, holder, [], 0) == (None, [])  # … stored after the erasure: nothing
    assert await rows(h.app, "SELECT * FROM certificates") == []


async def test_starting_again_withdraws_the_certificate(h: Harness):
    await qualify(h, 351)
    photo = await h.api.wait_for_message(351, lambda m: m.kind == "photo")
    code = CODE.search(photo.caption).group(1)
    h.api.send_text(351, "/restart")
    await h.api.wait_for_message(351, lambda m: "cannot be undone" in (m.text or "") or "Start again" in (m.text or ""))
    h.api.send_text(351, "yes")
    await h.api.wait_idle(quiet=0.3)
    h.api.add_user(352, first_name="Buyer", language_code="en")
    h.api.send_text(352, "/verify " + code)
    assert "withdrawn" in (await h.api.wait_for_message(352)).text


async def test_a_certificate_that_cannot_be_drawn_now_never_worries_the_owner(h: Harness, monkeypatch):
    def broken(certificate):
        raise pictures.ShapingUnavailable("no FriBiDi on this machine")

    monkeypatch.setattr(h.app.certificates, "draw", broken)
    await qualify(h, 361)
    await h.api.wait_idle(quiet=0.3)
    assert not any("could not save" in (m.text or "") for m in h.api.messages(361))
    assert await rows(h.app, "SELECT * FROM certificates") == []
    monkeypatch.undo()
    assert await h.app.certificates.catch_up() == 1  # the next run issues it
    await h.api.wait_for_message(361, lambda m: m.kind == "photo")


async def test_a_corrected_name_gets_a_new_certificate_and_the_old_code_is_withdrawn(h: Harness):
    await qualify(h, 371)
    first = await h.api.wait_for_message(371, lambda m: m.kind == "photo")
    old = CODE.search(first.caption).group(1)
    h.api.send_text(371, "/profile")
    details = await h.api.wait_for_message(371, lambda m: "Your details:" in (m.text or ""))
    h.api.tap_button(371, details, "Change an answer")
    which = await h.api.wait_for_message(371, lambda m: "Which answer" in (m.text or ""))
    h.api.tap_button(371, which, "Your name")
    await h.api.wait_for_message(371, lambda m: "name" in (m.text or "").lower() and "?" in (m.text or ""))
    h.api.send_text(371, "Asha Devi Sharma")
    summary = await h.api.wait_for_message(371, lambda m: "Asha Devi Sharma" in (m.text or ""))
    h.api.tap_button(371, summary, "Confirm")
    second = await h.api.wait_for_message(371, lambda m: m.kind == "photo" and m.message_id != first.message_id)
    new = CODE.search(second.caption).group(1)
    assert new != old
    h.api.add_user(372, first_name="Buyer", language_code="en")
    h.api.send_text(372, "/verify " + old)
    assert "withdrawn" in (await h.api.wait_for_message(372)).text
    h.api.send_text(372, "/verify " + new)
    assert "Asha Devi Sharma" in (await h.api.wait_for_message(372, lambda m: new in (m.text or ""))).text


async def test_the_qr_code_opens_the_bot_and_checks_the_code(h: Harness):
    await qualify(h, 381)
    photo = await h.api.wait_for_message(381, lambda m: m.kind == "photo")
    code = CODE.search(photo.caption).group(1)
    h.api.add_user(382, first_name="Buyer", language_code="en")
    h.api.send_text(382, "/start verify_" + code.replace("-", ""))  # what the QR code's t.me link sends
    assert f"Certificate {code} is valid." in (await h.api.wait_for_message(382)).text
