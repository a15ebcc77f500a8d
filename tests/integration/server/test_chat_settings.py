"""C1, M: the chat's settings for the Messaging Center over HTTP: read by users, changed by
administrators only, each value checked (a bad one changes nothing), an uploaded logo (a
raster image only, small) served beside the page; the page uses them."""

from __future__ import annotations

from aiohttp import ClientSession

from services.api import Service
from tests.integration.server.chat_support import browser
from tests.integration.server.conftest import ANN, BOB, call, customer_token, sign_in
from tests.support.world import World

PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)


async def test_c1_chat_settings_are_read_by_users_and_changed_by_administrators(
    svc: Service, world: World, base_url: str, http: ClientSession
) -> None:
    ann, bob = await sign_in(http, base_url, ANN), await sign_in(http, base_url, BOB)
    status, settings = await call(http, base_url, "GET", "/chat/settings", bob)
    assert status == 200
    assert settings == {
        "enabled": True,
        "title": "Messages",
        "colour": "#1f5fbf",
        "logo_url": "",
        "public_url": "",
        "widget_snippet": "",
    }
    change = {"title": "Acme help", "colour": "#FFCC00", "public_url": base_url + "/"}
    assert (await call(http, base_url, "PUT", "/chat/settings", bob, json=change))[0] == 403
    carl = await customer_token(svc)
    assert (await call(http, base_url, "GET", "/chat/settings", carl))[0] == 403
    status, settings = await call(http, base_url, "PUT", "/chat/settings", ann, json=change)
    assert status == 200
    assert (settings["title"], settings["colour"], settings["public_url"]) == (
        "Acme help",
        "#ffcc00",
        base_url,
    )
    assert settings["widget_snippet"] == f'<script src="{base_url}/chat/widget.js" async></script>'
    bad = {"title": "Changed?", "colour": "red"}
    status, answer = await call(http, base_url, "PUT", "/chat/settings", ann, json=bad)
    assert status == 400 and "chat.colour" in answer["error"]["message"]
    assert svc.config("chat.title") == "Acme help"  # nothing of a refused change is kept
    for logo in (
        "http://plain.example/logo.png",
        "javascript:alert(1)",
        "data:image/svg+xml;base64,PHN2Zz4=",
    ):
        status, _ = await call(
            http, base_url, "PUT", "/chat/settings", ann, json={"logo_url": logo}
        )
        assert status == 400, logo
    async with browser(base_url) as page, page.get(f"{base_url}/chat") as response:
        text = await response.text()
    assert "· Acme help</title>" in text
    assert 'href="/chat/theme/ffcc00.css"' in text


async def test_c1_an_uploaded_logo_is_a_small_raster_image_served_beside_the_page(
    svc: Service, world: World, base_url: str, http: ClientSession
) -> None:
    ann = await sign_in(http, base_url, ANN)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for refused in (svg, b"\x89PNG\r\n\x1a\n" + bytes(49 * 1024), b"GIF8"):
        status, _ = await call(http, base_url, "PUT", "/chat/logo", ann, data=refused)
        assert status == 400
    assert (await call(http, base_url, "PUT", "/chat/logo", ann, data=PNG))[0] == 200
    status, settings = await call(http, base_url, "GET", "/chat/settings", ann)
    assert settings["logo_url"] == "/chat/logo"
    async with browser(base_url) as page:
        async with page.get(f"{base_url}/chat") as response:
            text = await response.text()
        assert 'src="/chat/logo?v=' in text
        async with page.get(f"{base_url}/chat/logo") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert await response.read() == PNG
