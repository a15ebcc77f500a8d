"""D5: Ctrl+K searches every conversation of the person, not only the rows already loaded."""

from __future__ import annotations

from services.api import ConversationKind
from tests.support.world import open_service, seed

ANN = "ann@example.com"
BOB = "bob@example.com"
CARL = "carl@customer.org"


async def test_d5_find_by_number_or_title_words_case_blind_in_both_inboxes(
    database_url: str,
) -> None:
    service = await open_service(database_url)
    try:
        world = await seed(service)
        for n in range(2, 15):
            await service.create_item(title=f"Case {n} of the VPN", followers=[ANN, BOB])
        for number in (1, 12):
            await service.post(
                author=BOB, text="hi", item_number=number, kind=ConversationKind.INTERNAL
            )
            await service.post(
                author=CARL if number == 1 else BOB,
                text="hello",
                item_number=number,
                kind=ConversationKind.EXTERNAL,
            )
        await service.post(
            author=BOB, text="never mind", item_number=3, kind=ConversationKind.INTERNAL
        )
        direct = await service.direct_conversation(a=ANN, b=BOB)
        await service.post(author=BOB, text="lunch?", conversation_id=direct)

        rows = await service.find_conversations(person_id=world.ann, text="printer FIRE")
        assert {(r.item_number, r.kind) for r in rows} == {
            (1, ConversationKind.INTERNAL),
            (1, ConversationKind.EXTERNAL),
        }
        rows = await service.find_conversations(person_id=world.ann, text="#12")
        assert [r.item_number for r in rows][:2] == [12, 12]  # the exact number first
        assert any(
            r.unseen >= 1 for r in await service.find_conversations(person_id=world.ann, text="vpn")
        )
        # As in the lists: a new item's internal conversation shows before anyone writes (N2);
        # its external one only once it has a message.
        assert [
            (r.item_number, r.kind)
            for r in await service.find_conversations(person_id=world.ann, text="#5")
        ] == [(5, ConversationKind.INTERNAL)]
        assert [
            r.id for r in await service.find_conversations(person_id=world.ann, text="bob")
        ] == [direct]
        assert await service.find_conversations(person_id=world.ann, text="  ") == []
        assert len(await service.find_conversations(person_id=world.ann, text="o", limit=2)) == 2
        # '%' is a character, not a wildcard.
        assert await service.find_conversations(person_id=world.ann, text="%") == []
    finally:
        await service.close()


async def test_r2_customer_search_never_finds_internal_conversations(database_url: str) -> None:
    service = await open_service(database_url)
    try:
        world = await seed(service)
        await service.post(
            author=BOB, text="internal note", item_number=1, kind=ConversationKind.INTERNAL
        )
        await service.post(
            author=BOB, text="to the customer", item_number=1, kind=ConversationKind.EXTERNAL
        )
        rows = await service.find_conversations(person_id=world.carl, text="printer")
        assert [r.kind for r in rows] == [ConversationKind.EXTERNAL]
        # Bob does not follow a new item, so he cannot find it.
        await service.create_item(title="Secret plans", followers=[ANN])
        await service.post(author=ANN, text="x", item_number=2, kind=ConversationKind.INTERNAL)
        assert await service.find_conversations(person_id=world.bob, text="secret") == []
    finally:
        await service.close()
