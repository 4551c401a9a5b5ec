"""The API's operator pages: /healthz tells the truth about the MQTT session, and the
OpenAPI pages work with no internet (their assets come from this process)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from center.api import ApiContext, create_app
from center.config import parse_config
from center.server import CenterService
from tests.center.conftest import Harness
from tests.center.mqtt_support import eventually
from tests.support.mosquitto import Mosquitto

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
SPEC_URL = re.compile(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""")


@pytest.fixture(name="client")
def client_fixture(make_harness: Callable[[], Harness]) -> Iterator[TestClient]:
    h = make_harness()
    with TestClient(create_app(ApiContext(h.config, h.engine, h.service, h.counters))) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_openapi_pages_reference_no_external_host(client: TestClient, page: str) -> None:
    answer = client.get(page)
    assert answer.status_code == 200
    html = answer.text
    urls = ASSET.findall(html) + SPEC_URL.findall(html)
    assert any(u.endswith(".js") for u in urls), urls  # the page does load a script
    for url in urls:
        assert not re.match(r"^([a-z]+:)?//", url), f"{page} loads {url} from another host"
        assert client.get(url).status_code == 200, url
    assert "http://" not in html
    assert "https://" not in html


def _center(mosquitto: Mosquitto) -> CenterService:
    config = parse_config({
        "database": {"url": "sqlite://"},
        "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "client_id": "health"},
        "api": {"enabled": False},
    })  # fmt: skip
    return CenterService(config)


async def test_healthz_is_503_with_the_reason_while_the_broker_is_down(
    mosquitto: Mosquitto,
) -> None:
    service = await asyncio.to_thread(_center, mosquitto)
    stop = asyncio.Event()
    run = asyncio.create_task(service.run(stop))
    try:
        with TestClient(create_app(service.api_context)) as client:
            await eventually(lambda: service.mqtt_status["subscribed"], what="subscribed")
            up = client.get("/healthz")
            assert (up.status_code, up.json()["ok"], up.json()["problems"]) == (200, True, [])

            mosquitto.stop()
            await eventually(lambda: not service.mqtt_status["subscribed"], what="session down")
            down = client.get("/healthz")
            assert down.status_code == 503
            assert down.json()["ok"] is False
            (problem,) = down.json()["problems"]
            assert problem.startswith(f"MQTT session to {mosquitto.host}:{mosquitto.port} is down")

            mosquitto.start()
            await eventually(lambda: client.get("/healthz").status_code == 200, what="back up")
    finally:
        stop.set()
        await run
