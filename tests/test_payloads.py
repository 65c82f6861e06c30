"""The one codec for button payloads: everything written reads back the same, and nothing else reads."""

from __future__ import annotations

import pytest

from bot.core import payloads as P

WRITTEN = [
    P.Step(12, "a.fob"), P.Step(0, "yes"), P.Step(999_999_999, "done"), P.Module("payments"), P.ProfileEdit(),
    P.Wizard(3, "next"), P.Wizard(41, "t.uttar_pradesh"), P.LeadAction(7, "acc"), P.LeadAction(10**18 - 1, "lost.not_interested"),
    P.LeadAction(7, "undo.42"), P.LeadPage("offered", 2), P.Unlink("yes", 1_764_000_000), P.Unlink("no", 1),
    P.MorePage(2, "1a2b3c4d"), P.OwnNumber(), P.OpenHeld(),
]


@pytest.mark.parametrize("payload", WRITTEN, ids=lambda p: p.encode())
def test_every_payload_reads_back_as_written_and_fits_telegram(payload: P.Payload):
    data = P.encode(payload)
    assert P.decode(data) == payload
    assert len(data.encode()) <= P.MAX_BYTES


@pytest.mark.parametrize("data", [
    "", "x", ":", "12:", "go:" + "x" * 300, "bc:x:next", "bc:3:", "bc:3:NEXT", "ld:x:acc", "ld:12:",
    "ld:-1:acc", "ld:1234567890123456789:acc",  # more digits than any id the database holds
    "ld:١٢:acc", "ld:²:acc", "ld:1_0:acc", "१२:yes",  # digits of other scripts, superscripts, underscores
    "ld:12:acc:extra", "ls:lost:x", "ls:lost:1234567", "su:maybe:1", "su:yes:", "wa.more:x:abc", "wa.more:1:a b",
    "profile:delete", "admin:1:ok", "12" * 200, "ld:12:a\u200bcc",
])
def test_anything_else_is_no_payload_of_ours(data: str):
    assert P.decode(data) is None


def test_a_module_button_names_any_module_and_an_unknown_one_is_left_to_the_menu():
    assert P.decode("go:Payments") == P.Module("Payments") and P.decode("go:") == P.Module("")


def test_a_step_or_wizard_tap_counts_only_on_the_screen_it_was_drawn_for():
    assert P.Step(5, "yes").current(5) and not P.Step(4, "yes").current(5)
    assert P.Wizard(2, "ok").current(2) and not P.Wizard(1, "ok").current(2)
    assert (P.LeadAction(7, "dec.busy").base, P.LeadAction(7, "dec.busy").detail) == ("dec", "busy")
