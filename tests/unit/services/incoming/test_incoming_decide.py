"""What an incoming mail does, decided on plain data without a database (issue 9: the incoming
router split into a pure decision and the transaction that applies it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from services.conversations import ConversationRef
from services.domain.model import ConversationKind, PersonKind
from services.domain.tokens import make_token
from services.incoming.decide import (
    Facts,
    Ignore,
    MailPolicy,
    NewItem,
    Reply,
    Thread,
    decide,
    screen,
)
from services.incoming.parse import parse_mail
from services.views import PersonInfo

KEY = b"k" * 32
OUR = "support@deskbell.test"
POLICY = MailPolicy(own_address=OUR, token_key=KEY, create_items=True)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ANN = PersonInfo(id=1, email="ann@example.com", name="Ann", kind=PersonKind.USER)
CARL = PersonInfo(id=3, email="carl@customer.org", name="Carl", kind=PersonKind.CUSTOMER)
DORA = PersonInfo(id=4, email="dora@customer.org", name="Dora", kind=PersonKind.CUSTOMER)
INTERNAL = ConversationRef(id=10, kind=ConversationKind.INTERNAL, item_id=5)
EXTERNAL = ConversationRef(id=11, kind=ConversationKind.EXTERNAL, item_id=5)
ITEM = Thread(item_id=5, item_number=7, conversations=(INTERNAL, EXTERNAL), audience=(ANN, CARL))


def mail(
    sender: str = "carl@customer.org",
    *,
    to: str = OUR,
    subject: str = "Printer",
    body: str = "It prints again, thanks.\n",
    headers: dict[str, str] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Carl Customer <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<m1@customer.org>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


def reply_address(conversation_id: int, recipient_id: int) -> str:
    token = make_token(key=KEY, conversation_id=conversation_id, recipient_id=recipient_id)
    return f"support+{token}@deskbell.test"


def decided(raw: bytes, facts: Facts, policy: MailPolicy = POLICY) -> object:
    return decide(screen(parse_mail(raw), policy), facts, policy, NOW)


def test_i6_an_auto_reply_is_ignored_and_needs_no_look_up() -> None:
    screened = screen(parse_mail(mail(headers={"Auto-Submitted": "auto-replied"})), POLICY)
    assert not screened.needs_sender
    assert decide(screened, Facts(), POLICY, NOW) == Ignore(
        "auto-submitted mail (Auto-Submitted: auto-replied)"
    )


def test_i6_our_own_reply_address_as_sender_is_a_loop() -> None:
    decision = decided(mail(sender="support+x@deskbell.test"), Facts())
    assert isinstance(decision, Ignore)
    assert "our own address" in decision.reason


def test_i6_the_sender_hold_replays_the_recent_mails_it_was_given() -> None:
    recent = tuple(NOW - timedelta(seconds=n) for n in range(1, 16))
    decision = decided(mail(), Facts(recent=recent, sender=CARL))
    assert decision == Ignore("sender held: more than 15 mails in 10 minutes")
    assert isinstance(decided(mail(), Facts(recent=recent[:14], sender=CARL)), NewItem)


def test_i2_i3_a_customer_token_on_the_internal_conversation_goes_to_the_external() -> None:
    screened = screen(parse_mail(mail(to=reply_address(10, CARL.id))), POLICY)
    assert screened.conversation_ids == (10,)
    decision = decide(screened, Facts(sender=CARL, by_conversation={10: ITEM}), POLICY, NOW)
    assert decision == Reply(
        author=CARL,
        conversation=EXTERNAL,
        audience=(ANN, CARL),
        item_number=7,
        text="It prints again, thanks.",
        found_by="token in address",
    )
    assert isinstance(decision, Reply)
    assert decision.action == "threaded into #7"


def test_i2_a_forwarded_token_does_not_thread_for_a_stranger() -> None:
    """Dora neither owns the token nor follows the item: a new item, not Carl's thread."""
    raw = mail(sender=DORA.email, to=reply_address(11, CARL.id))
    decision = decided(raw, Facts(sender=DORA, by_conversation={11: ITEM}))
    assert isinstance(decision, NewItem)
    assert decision.author == DORA


def test_i2_subject_number_threads_only_for_a_follower() -> None:
    raw = mail(subject="Re: [#7] Printer", to=OUR)
    assert decided(raw, Facts(sender=ANN, by_number={7: ITEM})) == Reply(
        author=ANN,
        conversation=INTERNAL,
        audience=(ANN, CARL),
        item_number=7,
        text="It prints again, thanks.",
        found_by="[#N] in subject",
    )
    stranger = decided(mail(sender=DORA.email, subject="[#7] x"), Facts(sender=DORA))
    assert isinstance(stranger, NewItem)


def test_i4_a_reply_that_only_quotes_is_ignored() -> None:
    raw = mail(to=reply_address(11, CARL.id), body="On Monday, Ann wrote:\n> old text\n")
    assert decided(raw, Facts(sender=CARL, by_conversation={11: ITEM})) == Ignore(
        "no new text: the reply only quotes earlier mail"
    )


def test_i5_a_new_customer_opens_an_item_titled_by_the_subject() -> None:
    decision = decided(mail(sender="new@customer.org", subject="Re: [#99] Printer"), Facts())
    assert decision == NewItem(
        address="new@customer.org",
        name="Carl Customer",
        author=None,
        title="Printer",
        text="It prints again, thanks.",
    )


def test_i5_unknown_users_mail_and_turned_off_items_are_ignored() -> None:
    assert decided(mail(sender=ANN.email), Facts(sender=ANN)) == Ignore("no conversation found")
    off = MailPolicy(own_address=OUR, token_key=KEY, create_items=False)
    decision = decided(mail(), Facts(sender=CARL), off)
    assert decision == Ignore("no conversation found, and new items from mail are turned off")


def test_i7_a_mail_without_a_usable_sender_is_ignored() -> None:
    raw = b"From: nobody\r\nSubject: x\r\n\r\nbody\r\n"
    decision = decided(raw, Facts())
    assert isinstance(decision, Ignore)
    assert decision.reason.startswith("malformed mail: no usable sender")
