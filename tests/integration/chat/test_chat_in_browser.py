"""Issue 12 in a real headless Chromium: a customer opens the chat from the link in a real email
(caught by aiosmtpd), sees the conversation, an agent's post through the HTTP API shows live,
the page in view with input marks it seen so no email goes (C1, C2, S5); the page hidden behind
another tab for the delay gets the email. The server's clock is driven by hand (the email delay),
the page's own 0.75 s is real time, waited on with generous deadlines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from selenium.webdriver.common.keys import Keys

from tests.support.browser import DESKTOP, PHONE, Browser
from tests.support.chat_world import CARL, DELAY_S, ChatWorld, chat_world, text_of
from tests.support.smtpd import SmtpServer

READY = "document.body.dataset.ready === 'true'"


@pytest.fixture
async def world(tmp_path: Path, smtp_server: SmtpServer) -> AsyncIterator[ChatWorld]:
    async with chat_world(tmp_path / "workspace", smtp_server) as started:
        yield started


async def _enter(browser: Browser, world: ChatWorld) -> int:
    """Carl opens the link from his email; the conversation's id the page shows."""
    link, conversation_id = await world.first_link()
    await browser.open(link)
    await browser.wait_until(READY, what="the chat page live")
    path = await browser.script("return location.pathname + location.search")
    assert path == f"/chat/c/{conversation_id}"  # the token is gone from the address bar
    assert await browser.script("return document.cookie") == ""  # HttpOnly: not for scripts
    shown = await browser.script(
        "return Number(document.getElementById('chat').dataset.conversationId)"
    )
    assert shown == conversation_id
    assert "Hello Carl, we are on it." in await browser.script(
        "return document.getElementById('messages').innerText"
    )
    return conversation_id


def _message(message_id: int) -> str:
    return f"document.getElementById('m-{message_id}')"


async def test_c1_c2_s5_a_message_seen_in_the_chat_is_never_emailed(
    browser: Browser, world: ChatWorld
) -> None:
    """C1: the link in a real email opens the conversation; an agent's post through the API
    shows live. C2/S5: in view, visible and focused, with input, for 0.75 s: seen, recorded by
    the server as Carl's, and no email goes to Carl after the delay."""
    await browser.show_as(PHONE, "light")
    conversation_id = await _enter(browser, world)
    message_id = await world.agent_posts(conversation_id, "Could you restart the printer?")
    await browser.wait_until(
        f"{_message(message_id)} && {_message(message_id)}.innerText.includes('restart')",
        what="the agent's message shown live",
    )
    await browser.interact()
    await browser.wait_until(
        f"{_message(message_id)}.dataset.seen === 'true'", what="the page marking it seen"
    )
    await world.wait_seen_by(message_id, conversation_id, CARL)

    emails_before = len(world.emails_to(CARL))
    await world.send_due_emails(after_s=DELAY_S * 3)
    assert len(world.emails_to(CARL)) == emails_before


async def test_c2_s5_a_page_hidden_behind_another_tab_does_not_see_so_the_email_goes(
    browser: Browser, world: ChatWorld
) -> None:
    """S5: the page open but hidden (another tab over it, so not visible and not focused)
    sees nothing; after the delay the message is emailed to Carl. Back in front, with input,
    the page shows it and marks it seen."""
    conversation_id = await _enter(browser, world)
    await browser.cover()
    message_id = await world.agent_posts(conversation_id, "Is the printer still smoking?")
    await world.send_due_emails(after_s=DELAY_S * 2)
    emailed = [m for m in world.emails_to(CARL) if "still smoking" in text_of(m)]
    assert len(emailed) == 1
    assert CARL not in await world.seen_by(message_id, conversation_id)

    await browser.uncover()
    await browser.wait_until(f"{_message(message_id)}", what="the message on the page")
    await browser.interact()
    await world.wait_seen_by(message_id, conversation_id, CARL)


async def test_c1_s5_on_a_phone_a_live_message_is_not_left_under_the_composer(
    browser: Browser, world: ChatWorld
) -> None:
    """C1 on a phone: a message that arrives while the reader is at the end of the page comes
    into view above the composer, not under it (S5 counts only what is on screen)."""
    await browser.show_as(PHONE, "light")
    conversation_id = await _enter(browser, world)
    for n in range(4):
        await world.agent_posts(conversation_id, f"Step {n}:\n" + "check the tray\n" * 5)
    await browser.script("window.scrollTo(0, document.documentElement.scrollHeight)")
    message_id = await world.agent_posts(conversation_id, "The newest\none, three\nlines long")
    await browser.wait_until(_message(message_id), what="the newest message on the page")
    await browser.settle()
    message_bottom, composer_top = await browser.script(
        f"return [{_message(message_id)}.getBoundingClientRect().bottom,"
        " document.getElementById('composer').getBoundingClientRect().top]"
    )
    assert message_bottom <= composer_top


async def test_c2_s5_on_a_phone_a_message_under_the_composer_is_not_seen(
    browser: Browser, world: ChatWorld
) -> None:
    """C2/S5: a message on screen but covered by the sticky composer is not seen, while the
    one above it, watched from the same moment with the same input, is."""
    await browser.show_as(PHONE, "light")
    conversation_id = await _enter(browser, world)
    ids = [
        await world.agent_posts(conversation_id, f"Step {n}:\n" + "check the tray\n" * 4)
        for n in range(6)
    ]
    await browser.wait_until(_message(ids[-1]), what="the last message on the page")
    above, under = ids[2], ids[3]
    # The page's own scrolling is not the reader's input: nothing is seen before theirs.
    await browser.script(
        f"window.scrollBy(0, {_message(under)}.getBoundingClientRect().top"
        " - document.getElementById('composer').getBoundingClientRect().top)"
    )
    await browser.settle()
    await browser.interact()
    covered = await browser.script(_COVERED, under)
    assert covered is True, covered
    await browser.wait_until(f"{_message(above)}.dataset.seen === 'true'", what="seen above")
    assert await browser.script(f"return {_message(under)}.dataset.seen") == "false"
    await world.wait_seen_by(above, conversation_id, CARL)
    assert CARL not in await world.seen_by(under, conversation_id)


# Whether the message `m-<id>` is on screen but wholly under the composer.
_COVERED = """
const m = document.getElementById('m-' + arguments[0]).getBoundingClientRect();
const c = document.getElementById('composer').getBoundingClientRect();
return m.top >= c.top - 1 && m.top < innerHeight && m.bottom <= innerHeight + 1
  || [m.top, m.bottom, c.top, innerHeight];
"""


async def test_c1_the_customer_writes_from_the_page_and_the_agent_gets_it(
    browser: Browser, world: ChatWorld
) -> None:
    """C1: typed into the composer and sent, the customer's message is posted as theirs in
    the conversation (the agents' side reads it), and shows on the page; markup is text."""
    conversation_id = await _enter(browser, world)
    text = "The printer is off now <script>alert(1)</script>"
    await _send(browser, text)
    rows = await world.service.messages(conversation_id=conversation_id, viewer_id=world.people.ann)
    assert (rows[-1].text, rows[-1].author and rows[-1].author.email) == (text, CARL)
    assert await browser.script("return document.querySelectorAll('#messages script').length") == 0


async def _send(browser: Browser, text: str) -> str:
    """Type `text` into the composer, send it, wait for it on the page: its author kind."""
    await browser.type_into("#composer-text", text)
    await browser.click("#composer-send")
    kind = await browser.wait_until(
        "[...document.querySelectorAll('#messages .message')]"
        ".filter(m => m.innerText.includes(arguments[0])).map(m => m.dataset.authorKind)[0]",
        text,
        what="the customer's message on the page",
    )
    assert isinstance(kind, str)
    return kind


async def test_c1_the_customers_own_live_message_is_shown_as_theirs(
    browser: Browser, world: ChatWorld
) -> None:
    """C1: what the customer sent shows as theirs (styled as theirs, never waiting to be
    seen by them), as it does once the page is reloaded."""
    await _enter(browser, world)
    assert await _send(browser, "Here is the serial number: 1234") == "customer"
    live = await browser.script(_OWN_MESSAGE, "serial number")
    await browser.open(await browser.script("return location.href"))  # waits for the load
    await browser.wait_until(READY, what="the chat page live again")
    assert live == await browser.script(_OWN_MESSAGE, "serial number") == ["own", "true"]


# How the page shows the message with the given text: styled as the customer's own or not,
# and whether it waits to be seen.
_OWN_MESSAGE = """
const m = [...document.querySelectorAll('#messages .message')]
  .find(m => m.innerText.includes(arguments[0]));
return [m.classList.contains('own') ? 'own' : 'other', m.dataset.seen];
"""


# Every element with text of its own, visible: its colour against the background painted
# behind it (translucent layers blended), against WCAG's AA minimum (3:1 for large text).
_LOW_CONTRAST = """
function parse(c) {
  const m = c.match(/rgba?\\(([^)]+)\\)/);
  if (!m) return null;
  const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
}
function lum(c) {
  const f = (v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function behind(el) {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
  }
  let out = {r: 255, g: 255, b: 255};
  if (layers.length && layers[layers.length - 1].a >= 1) out = layers.pop();
  for (const l of layers.reverse())
    out = {r: l.r * l.a + out.r * (1 - l.a), g: l.g * l.a + out.g * (1 - l.a),
           b: l.b * l.a + out.b * (1 - l.a)};
  return out;
}
const low = [];
for (const el of document.querySelectorAll("body *")) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())
    || ["INPUT", "TEXTAREA", "BUTTON"].includes(el.tagName);
  const box = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  if (!own || !box.width || !box.height || style.visibility === "hidden") continue;
  const a = lum(parse(style.color)), b = lum(behind(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
  const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  if (ratio < need)
    low.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ${ratio.toFixed(2)}: `
      + (el.innerText || "").slice(0, 30));
}
return low;
"""


@pytest.mark.parametrize("colour", ["#1f5fbf", "#ffcc00", "#101010"])
async def test_c3_text_contrast_meets_wcag_aa_in_light_and_dark_whatever_the_colour(
    browser: Browser, world: ChatWorld, colour: str
) -> None:
    """C3 (WCAG 2.2 AA, 1.4.3): every text on the page, the composer and its button included,
    against what is painted behind it, on a phone and a desktop, light and dark, with the
    default accent, a pale one and a dark one (the page adapts the workspace's colour)."""
    await world.service.set_config("chat.colour", colour)
    await _enter(browser, world)
    for screen in (PHONE, DESKTOP):
        for scheme in ("light", "dark"):
            await browser.show_as(screen, scheme)
            await browser.settle()
            assert await browser.script(_LOW_CONTRAST) == [], (screen.name, scheme)


async def test_c3_the_keyboard_alone_reaches_the_composer_and_sends(
    browser: Browser, world: ChatWorld
) -> None:
    """C3 (WCAG 2.1.1, 2.4.7): from the top of the page, Tab reaches the labelled composer and
    its button, each showing a focus outline, and Enter on the button sends."""
    await _enter(browser, world)
    focused = "document.activeElement ? document.activeElement.id : ''"
    for _ in range(30):
        if await browser.script(f"return {focused}") == "composer-text":
            break
        await browser.press(Keys.TAB)
    assert await browser.script(f"return {focused}") == "composer-text"
    assert await browser.script(
        "return document.activeElement.labels.length > 0"
        " && document.activeElement.labels[0].innerText.trim() !== ''"
    )
    await browser.press("Sent with the keyboard")
    await browser.press(Keys.TAB)
    assert await browser.script(f"return {focused}") == "composer-send"
    outline = await browser.script(
        "const s = getComputedStyle(document.activeElement);"
        "return [s.outlineStyle, parseFloat(s.outlineWidth)]"
    )
    assert outline[0] != "none" and outline[1] >= 2, outline
    await browser.press(Keys.ENTER)
    await browser.wait_until(
        "document.getElementById('messages').innerText.includes('Sent with the keyboard')",
        what="the message sent from the keyboard",
    )


async def test_c3_on_a_phone_the_way_back_to_all_conversations_stands_clear_of_the_header(
    browser: Browser, world: ChatWorld
) -> None:
    """C1/C3 on a phone: "All conversations" is a link with room around it, not touching the
    header's border, and a target of at least 24 px (WCAG 2.2, 2.5.8)."""
    await browser.show_as(PHONE, "light")
    await _enter(browser, world)
    await browser.settle()
    header_bottom, link_top, link_height = await browser.script(
        "const h = document.querySelector('header.top').getBoundingClientRect();"
        "const a = document.querySelector('a.back').getBoundingClientRect();"
        "return [h.bottom, a.top, a.height]"
    )
    assert link_top - header_bottom >= 8, (header_bottom, link_top)
    assert link_height >= 24, link_height
