"""Every API route, walked with hostile values in its path, query and body, on SQLite and
PostgreSQL: bad input gets a 4xx with a message, never a 500. Bodies have a size limit,
strings a length limit."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from center.api import ApiContext, create_app
from center.api.limits import MAX_BODY_BYTES
from tests.center.records import T0, Gateway, seed_records

TOKEN = "operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

HOSTILE_SCALARS: list[Any] = [
    0,
    -1,
    2**63,
    2**64 + 1,
    -(2**70),
    10**400,
    1e308,
    "",
    "x" * 100_000,
    "a\x00b",
    "\ud800",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "2025-03-01T08:00:00",
    "99999-01-01T00:00:00Z",
    "NaN",
    "../../etc/passwd",
    True,
    None,
    [],
    {"a": {"b": [1, 2, {"c": None}]}},
]
PATH_VALUES = ["0", "-1", str(2**63), str(2**64), "9" * 400, "x", "%00", "a" * 5000]
QUERY_VALUES = [
    "0",
    "-1",
    str(2**63),
    "9" * 400,
    "a\x00b",
    "x" * 10_000,
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "2025-03-01T08:00:00",
    "true",
]


@pytest.fixture
def client(make_harness):
    h = make_harness({"api": {"tokens": [{"name": "alice", "token": TOKEN, "role": "admin"}]}})
    gw = Gateway()
    for r in seed_records(gw):
        h.send(r)
    ctx = ApiContext(h.config, h.engine, h.service, h.counters)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c


def routes(client: TestClient) -> list[APIRoute]:
    found = [r for r in client.app.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    assert len(found) > 20
    return found


def fill(path: str, value: str) -> str:
    out = path
    while "{" in out:
        start = out.index("{")
        out = out[:start] + value + out[out.index("}", start) + 1 :]
    return out


def send(client: TestClient, method: str, url: str, **kw: Any) -> int:
    headers = dict(AUTH)
    if "json" in kw:  # escaped JSON: a lone surrogate cannot be sent as UTF-8
        kw["content"] = json.dumps(kw.pop("json")).encode()
        headers["Content-Type"] = "application/json"
    response = client.request(method, url, headers=headers, **kw)
    assert response.status_code < 500, (method, url, str(kw)[:200], response.text[:300])
    if response.status_code >= 400:
        assert response.json().get("detail"), response.text[:300]  # a message, not a blank
    return response.status_code


def body_fields(route: APIRoute) -> list[str]:
    body = route.body_field
    if body is None:
        return []
    model = body.field_info.annotation
    return list(getattr(model, "model_fields", {}))


def test_every_route_refuses_hostile_values_without_a_server_error(client):
    for route in routes(client):
        assert route.methods is not None
        for method in route.methods:
            path = route.path_format
            for value in PATH_VALUES if "{" in path else [""]:
                url = fill(path, value)
                fields = body_fields(route)
                if not fields:
                    send(client, method, url)
                for name, hostile in itertools.product(fields, HOSTILE_SCALARS):
                    send(client, method, url, json={"site": "north", name: hostile})
            for param in route.dependant.query_params:
                for value in QUERY_VALUES:
                    send(client, method, fill(path, "1"), params={param.alias: value})


def test_a_body_over_the_limit_is_refused_before_it_is_read(client):
    huge = {"site": "north", "starts_at": T0.isoformat(), "ends_at": "2099-01-01T00:00:00Z"}
    huge["reason"] = "x" * (MAX_BODY_BYTES + 1)
    response = client.post("/api/v1/maintenance", json=huge, headers=AUTH)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    # Without a Content-Length (chunked), the limit holds as the body streams in.
    chunks = (b"x" * 65536 for _ in range(MAX_BODY_BYTES // 65536 + 2))
    response = client.post(
        "/api/v1/maintenance",
        content=chunks,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert client.get("/api/v1/maintenance", headers=AUTH).json() == []


def test_a_maintenance_window_with_an_over_long_reason_is_refused(client):
    window = {"site": "north", "starts_at": T0.isoformat(), "ends_at": "2099-01-01T00:00:00Z"}
    response = client.post(
        "/api/v1/maintenance", json={**window, "reason": "x" * 5000}, headers=AUTH
    )
    assert response.status_code == 422
    assert "reason" in response.text
    assert client.post("/api/v1/maintenance", json=window, headers=AUTH).status_code == 201
