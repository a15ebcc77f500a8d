"""extract_reply (I4): the new text of a reply, wherever it stands; quotes and signatures go."""

from __future__ import annotations

import pytest

from services.incoming.reply import extract_reply

QUOTE = "> Which model is it?\n> And where does it stand?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # top-posted
        (f"HP 4250, room 3.12.\n\nOn Mon, 5 Jan 2026, Desk wrote:\n{QUOTE}", "HP 4250, room 3.12."),
        # bottom-posted: the attribution and the quote go, the text below stays
        (f"On Mon, 5 Jan 2026, Desk wrote:\n{QUOTE}\n\nHP 4250, room 3.12.", "HP 4250, room 3.12."),
        # bottom-posted without a blank line after the quote
        (f"On 1/5/26 10:00, Desk wrote:\n{QUOTE}\nHP 4250.", "HP 4250."),
        # inline: every answer stays, each its own paragraph
        (
            "Desk <d@x.test> wrote:\n> Which model?\nHP 4250.\n> Which room?\n3.12.",
            "HP 4250.\n\n3.12.",
        ),
        # text above, between and below
        (
            "Answers below.\n\nOn Mon, Desk wrote:\n> Which model?\n\nHP.\n\n> Room?\n\n3.12.",
            "Answers below.\n\nHP.\n\n3.12.",
        ),
    ],
    ids=["top", "bottom", "bottom-tight", "inline", "everywhere"],
)
def test_i4_new_text_survives_top_bottom_and_inline(text: str, expected: str) -> None:
    assert extract_reply(text) == expected


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, Jan 05, 2026 at 09:00:00AM +0000, Deskbell Support wrote:",
        "On Mon, 2026-01-05 at 09:00 +0000, Deskbell Support wrote:",
        "On January 5, 2026 9:00:00 AM UTC, Deskbell Support <s@d.test> wrote:",
        "On Mon, Jan 5, 2026 at 9:00 AM Deskbell Support <s@d.test>\nwrote:",
        "* Deskbell Support <s@d.test> [260105 09:00]:",
        "Am 05.01.2026 um 09:00 schrieb Deskbell Support <s@d.test>:",
        "Deskbell Support <s@d.test> schrieb am Mo., 5. Jan. 2026, 09:00:",
        "Le lun. 5 janv. 2026 à 09:00, Deskbell Support <s@d.test> a écrit :",
        "El lun, 5 ene 2026 a las 9:00, Deskbell Support (<s@d.test>) escribió:",
        "Il giorno lun 5 gen 2026 alle ore 09:00 Deskbell Support <s@d.test> ha scritto:",
        "Op ma 5 jan. 2026 om 09:00 schreef Deskbell Support <s@d.test>:",
    ],
)
def test_i4_attributions_of_many_clients_and_languages(attribution: str) -> None:
    text = f"{attribution}\n{QUOTE}\n\nThe new text."
    assert extract_reply(text) == "The new text."
    assert extract_reply(f"The new text.\n\n{attribution}\n{QUOTE}") == "The new text."


@pytest.mark.parametrize(
    "header",
    [
        "From: Desk <s@d.test>\nSent: Monday, January 5, 2026 9:00 AM\nTo: Ann\nSubject: Hi",
        "Von: Desk <s@d.test>\nGesendet: Montag, 5. Januar 2026 09:00\nAn: Ann\nBetreff: Hi",
        "De : Desk <s@d.test>\nEnvoyé : lundi 5 janvier 2026 09:00\nÀ : Ann\nObjet : Hi",
        "De: Desk <s@d.test>\nEnviado: lunes, 5 de enero de 2026 9:00\nPara: Ann\nAsunto: Hi",
        "Da: Desk <s@d.test>\nInviato: lunedì 5 gennaio 2026 09:00\nA: Ann\nOggetto: Hi",
        "Van: Desk <s@d.test>\nVerzonden: maandag 5 januari 2026 09:00\nAan: Ann\nOnderwerp: Hi",
        "-----Original Message-----\nFrom: Desk",
        "-----Ursprüngliche Nachricht-----\nVon: Desk",
        "________________________________\nFrom: Desk",
        "On Mon, 5 Jan 2026, Desk wrote:\nHello Ann, the old text without quote marks.",
    ],
)
def test_i4_unquoted_history_is_cut(header: str) -> None:
    text = f"The new text.\n\n{header}\n\nHello Ann,\nthe old text."
    assert extract_reply(text) == "The new text."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It works.\n\n-- \nAnna Kunde\n+49 30 1234567", "It works."),
        ("It works.\n\nSent from my iPhone", "It works."),
        ("It works.\n\nGet Outlook for Android", "It works."),
        ("Es geht.\n\nVon meinem iPhone gesendet", "Es geht."),
        ("It works.\n\nBest regards,\nAnna Kunde\nFacility", "It works."),
        ("Es geht.\n\nViele Grüße\nAnna", "Es geht."),
        # a closing never empties a reply, and a sentence is no closing
        ("Thanks,\nAnna", "Thanks,\nAnna"),
        ("It works.\n\nThank you!", "It works.\n\nThank you!"),
        ("Thanks, that fixed it!\nNow the scanner.", "Thanks, that fixed it!\nNow the scanner."),
        # a closing with a long text after it is part of the text
        *[(text, text) for text in ["Ok.\n\nThanks,\none\ntwo\nthree\nfour\nfive\nsix"]],
        ("- first\n- second", "- first\n- second"),
    ],
)
def test_i4_signatures_go_text_stays(text: str, expected: str) -> None:
    assert extract_reply(text) == expected


def test_i4_a_reply_of_quotes_only_has_no_new_text() -> None:
    assert extract_reply("> only\n> quoted") == ""
    assert extract_reply("On Mon, Desk wrote:\n> only\n>\n> quoted\n\n-- \nAnna") == ""


def test_i4_the_introducing_line_goes_only_before_a_quote() -> None:
    text = "As Ann wrote:\nthe printer is old.\n\nJohn wrote: nothing new."
    assert extract_reply(text) == text
