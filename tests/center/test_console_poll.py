"""The device page's remote poll, through a real Mosquitto to a real agent daemon (relays
faked at the driver boundary, as in the agent's remote-poll tests): an engineer sees the
agent's answer on the page, an operator may not poll, and every poll is in the audit."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from center.api import ApiContext, create_app
from center.auth.users import UserStore
from tests.agent.test_control_support import (  # noqa: F401 - fixtures
    TOKEN,
    FakeRelay,
    fake_relays_fixture,
    short_dir_fixture,
)
from tests.agent.test_remote_poll import agent_online
from tests.center.conftest import Harness
from tests.center.records import T0, Gateway
from tests.support.mosquitto import Mosquitto


def _login(app: Any, name: str, password: str) -> tuple[TestClient, str]:
    c = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert token is not None
    c.post("/login", data={"username": name, "password": password, "csrf": token[1]})
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/queue").text)
    assert csrf is not None
    return c, csrf[1]


async def test_an_engineer_polls_a_relay_from_its_page(
    fake_relays: type[FakeRelay], short_dir: Path, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    token_file = tmp_path / "poll-token"
    token_file.write_text(TOKEN + "\n")
    h = Harness(
        f"sqlite:///{tmp_path / 'center.sqlite'}",
        {
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "console": {"poll_token_file": str(token_file), "poll_timeout_s": 3},
        },
    )
    gw = Gateway()  # north/gw1, as the agent's config
    h.send(gw.event("line1", "breaker_closed", True, T0, signal="status", severity="info"))
    users = UserStore(h.engine)
    users.add("ed", "engineer-pass-1", "engineer", by="t", via="cli", now=T0)
    users.add("olga", "operator-pass-1", "operator", by="t", via="cli", now=T0)
    app = create_app(ApiContext(h.config, h.engine, h.service, h.counters))
    ed, ed_csrf = _login(app, "ed", "engineer-pass-1")
    olga, olga_csrf = _login(app, "olga", "operator-pass-1")
    try:
        assert 'id="poll-form"' not in olga.get("/devices/north/line1").text
        refused = olga.post("/devices/north/line1/poll", data={"csrf": olga_csrf})
        assert refused.status_code == 403
        assert "needs the engineer role" in refused.text
        async with agent_online(mosquitto, short_dir):
            page = await asyncio.to_thread(
                ed.post, "/devices/north/line1/poll", data={"csrf": ed_csrf, "what": "identity"}
            )
        assert page.status_code == 200, page.text
        answer = re.search(r'<pre class="answer">(.*?)</pre>', page.text, re.S)
        assert answer is not None
        assert "line1" in answer[1]
        # The agent is gone: the page says so instead of failing.
        offline = await asyncio.to_thread(
            ed.post, "/devices/north/line1/poll", data={"csrf": ed_csrf, "what": "status"}
        )
        assert offline.status_code == 502
        assert "did not answer" in offline.text
        with h.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT actor, action, detail FROM console_actions WHERE via = 'console'")
            ).all()
        polls = [tuple(r) for r in rows if r[1] == "remote_poll"]
        assert polls[0] == ("ed", "remote_poll", "identity: ok")
        assert polls[1][2].startswith("status: agent gw1 at site north did not answer")
    finally:
        h.close()
