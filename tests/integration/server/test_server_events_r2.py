"""R2 as a property (hypothesis): whatever happens in a workspace, a customer's event stream,
live or caught up from the start, never carries an internal message, the existence of an
internal or direct conversation, anything of an item the customer never followed, another
person's address, or administration. Real service, real server, real WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api import LOCAL_OPERATOR, ConversationKind, DeskbellError, PersonKind, Service
from services.clock import ManualClock
from services.server.app import build_app
from services.server_client import events
from tests.support.world import open_service, seed

ANN, BOB, CARL, DORA = "ann@example.com", "bob@example.com", "carl@customer.org", "dora@shop.net"
PEOPLE = (ANN, BOB, CARL, DORA)
USERS = (ANN, BOB)
DEADLINE_S = 120
ALLOWED_TYPES = {"message", "seen", "item", "follow", "person", "ready", "resync"}

person = st.sampled_from(PEOPLE)
item = st.integers(min_value=0, max_value=3)  # an index into the items made so far
operations = st.lists(
    st.one_of(
        st.tuples(st.just("post"), person, item, st.sampled_from(["internal", "external"])),
        st.tuples(st.just("item"), st.sets(person, max_size=3)),
        st.tuples(st.just("follow"), person, item),
        st.tuples(st.just("unfollow"), person, item),
        st.tuples(st.just("seen"), person, item),
        st.tuples(st.just("status"), item, st.sampled_from(["open", "pending", "solved"])),
        st.tuples(st.just("assign"), item, st.sampled_from([*USERS, None])),
        st.tuples(st.just("delete"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("direct"), st.sampled_from(USERS)),
        st.tuples(st.just("settings"), st.integers(min_value=60, max_value=600)),
        st.tuples(st.just("end-session"), st.sampled_from(USERS)),
    ),
    max_size=14,
)


@dataclass
class Model:
    """What the customer may ever see: the items Carl followed at some time."""

    numbers: list[int]
    ever_followed: set[int] = field(default_factory=set)
    secrets: list[str] = field(default_factory=list)  # texts of internal and direct messages
    messages: list[int] = field(default_factory=list)


async def apply(svc: Service, model: Model, op: tuple[Any, ...], n: int) -> None:
    what = op[0]
    number = (
        model.numbers[op[2] % len(model.numbers)]
        if what in ("post", "follow", "unfollow", "seen")
        else None
    )
    if what == "post":
        text = f"{op[3].upper()}-{n}"
        posted = await svc.post(
            author=op[1], text=text, item_number=number, kind=ConversationKind(op[3])
        )
        model.messages.append(posted.message_id)
        if op[3] == "internal":
            model.secrets.append(text)
    elif what == "item":
        made = await svc.create_item(title=f"Item {n}", followers=sorted(op[1]))
        model.numbers.append(made.number)
        if CARL in op[1]:
            model.ever_followed.add(made.number)
    elif what == "follow":
        await svc.follow(number=number, email=op[1])
        if op[1] == CARL:
            assert number is not None
            model.ever_followed.add(number)
    elif what == "unfollow":
        await svc.unfollow(number=number, email=op[1])
    elif what == "seen":
        await svc.mark_item_seen(number=number, email=op[1])
    elif what == "status":
        await svc.set_item_status(number=model.numbers[op[1] % len(model.numbers)], status=op[2])
    elif what == "assign":
        await svc.assign_item(number=model.numbers[op[1] % len(model.numbers)], email=op[2])
    elif what == "delete" and model.messages:
        message_id = model.messages[op[1] % len(model.messages)]
        await svc.delete_message(message_id=message_id, acting=ANN)
    elif what == "direct":
        other = BOB if op[1] == ANN else ANN
        conversation = await svc.direct_conversation(a=op[1], b=other)
        text = f"DIRECT-{n}"
        await svc.post(author=op[1], text=text, conversation_id=conversation)
        model.secrets.append(text)
    elif what == "settings":
        await svc.set_config("unseen_delay_s", str(op[1]))
    elif what == "end-session":
        for session in await svc.sessions(acting=LOCAL_OPERATOR, email=op[1]):
            await svc.end_session(acting=LOCAL_OPERATOR, session_id=session.id)


def check(frames: list[dict[str, Any]], model: Model, carl_id: int, externals: set[int]) -> None:
    text = json.dumps(frames)
    for secret in model.secrets:
        assert re.search(rf'"{secret}"', text) is None, secret
    for address in PEOPLE:
        if address != CARL:
            assert address not in text
    for frame in frames:
        assert frame["type"] in ALLOWED_TYPES, frame
        assert "internal_conversation_id" not in json.dumps(frame), frame
        if "conversation_id" in frame:
            assert frame["conversation_id"] in externals, frame
            assert frame["conversation_kind"] == "external", frame
        for key in ("item_number",):
            if frame.get(key) is not None:
                assert frame[key] in model.ever_followed, frame
        if "item" in frame:
            assert frame["item"]["number"] in model.ever_followed, frame
        if frame["type"] in ("follow", "person"):
            assert frame["person"]["id"] == carl_id, frame


async def scenario(url: str, ops: list[tuple[Any, ...]]) -> None:
    svc = await open_service(url, clock=ManualClock())
    runner = web.AppRunner(build_app(svc), access_log=None, handle_signals=False)
    try:
        world = await seed(svc)
        await svc.add_person(email=DORA, name="Dora", kind=PersonKind.CUSTOMER)
        for email in USERS:
            await svc.set_password(acting=LOCAL_OPERATOR, email=email, password="long password 1")
        await svc.start(mail=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        async with ClientSession() as http:
            for email in USERS:  # users signed in too: their sessions may end
                async with http.post(
                    f"{base}/api/v1/sessions",
                    json={"email": email, "password": "long password 1", "device": "t"},
                ) as response:
                    assert response.status == 201
        carl = await svc.open_customer_session(
            acting=LOCAL_OPERATOR, email=CARL, device="chat", address="127.0.0.1"
        )
        model = Model(numbers=[world.item], ever_followed={world.item})
        live: list[dict[str, Any]] = []
        stream = events(base, carl.token)
        live.append(await anext(stream))
        for n, op in enumerate(ops):
            # A refused operation (a customer posting internally, say) leaves nothing to see.
            with contextlib.suppress(DeskbellError):
                await apply(svc, model, op, n)
        last = await svc.create_item(title="The end", followers=[CARL, ANN])
        model.ever_followed.add(last.number)
        await svc.post(
            author=ANN, text="THE-END", item_number=last.number, kind=ConversationKind.EXTERNAL
        )

        async def read(into: list[dict[str, Any]], source: Any, stop: str) -> None:
            async for event in source:
                into.append(event)
                if stop == "ready" and event["type"] == "ready":
                    return
                if event.get("message", {}).get("text") == stop:
                    return

        await asyncio.wait_for(read(live, stream, "THE-END"), DEADLINE_S)
        await stream.aclose()
        replay: list[dict[str, Any]] = []
        await asyncio.wait_for(read(replay, events(base, carl.token, after=0), "ready"), DEADLINE_S)
        externals = {
            (await svc.item(number)).external_conversation_id for number in model.ever_followed
        }
        check(live, model, world.carl, externals)
        check(replay, model, world.carl, externals)
        assert any(e.get("message", {}).get("text") == "THE-END" for e in replay)
    finally:
        await runner.cleanup()
        await svc.close()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_r2_property_a_customer_stream_never_carries_anything_internal_or_another_customers(
    ops: list[tuple[Any, ...]], sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "r2.db"
    shutil.copyfile(sqlite_template, path)
    asyncio.run(scenario(f"sqlite:///{path}", ops))
