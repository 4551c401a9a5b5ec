"""The outbox's recent event keys (gateway/outbox_keys.py): stored in the commit of their
records and only there, read back in order after a restart, trimmed to each device's last
`KEPT`, and an older agent's JSON window taken over as rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway import outbox_keys
from gateway import outbox_retention as retention
from gateway.outbox import Outbox, OutboxFull, Pending, StateUpdate


def trip(n: int) -> Pending:
    body = json.dumps({"kind": "event", "signal": "trip", "n": n}).encode()
    return Pending(
        "relay/v1/s/g/event/d1", "event", body, False, retention.priority("event", "trip")
    )


def reopened(path: Path) -> Outbox:
    box = Outbox(path)
    box.open()
    return box


def test_keys_are_read_back_per_device_in_the_order_they_were_committed(tmp_path: Path) -> None:
    box = reopened(tmp_path / "o.sqlite")
    box.append_blocking([trip(1), trip(2)], keys={"d1": ["a1", "a2"], "d2": []})
    box.append_blocking([trip(3), trip(4)], keys={"d2": ["b1"], "d1": ["a3"]})
    box.close()
    box = reopened(tmp_path / "o.sqlite")
    try:
        assert box.recent_keys() == {"d1": ["a1", "a2", "a3"], "d2": ["b1"]}
    finally:
        box.close()


def test_the_keys_of_a_refused_append_are_not_stored_and_a_later_ones_are(tmp_path: Path) -> None:
    """A commit that fails takes its keys with it: the relay's resend is then stored, not
    dropped as already seen; the next commit stores its own keys and no others."""
    box = Outbox(tmp_path / "o.sqlite", max_records=3)
    box.open()
    try:
        with pytest.raises(OutboxFull):
            box.append_blocking([trip(n) for n in range(4)], keys={"d1": ["w", "x", "y", "z"]})
        box.append_blocking([trip(9)], keys={"d1": ["k"]})
        assert box.recent_keys() == {"d1": ["k"]}
    finally:
        box.close()


def test_the_table_is_trimmed_to_each_devices_last_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_keys, "KEPT", 5)
    monkeypatch.setattr(outbox_keys, "TRIM_FLOOR", 20)
    box = reopened(tmp_path / "o.sqlite")
    try:
        sizes = []
        for n in range(60):
            keys = {"d1": [f"a{n}"], **({"d2": [f"b{n}"]} if n % 3 == 0 else {})}
            box.append_blocking([trip(n)], keys=keys)
            box.store_journal()  # each commit in SQLite itself, as one without the journal
            sizes.append(_rows(tmp_path / "o.sqlite"))
        assert max(sizes) <= 20  # trimmed in the commit that passes the floor
        assert min(sizes[30:]) >= 10  # each device's last 5 always kept
        assert box.recent_keys() == {
            "d1": [f"a{n}" for n in range(55, 60)],
            "d2": [f"b{n}" for n in range(45, 60, 3)],
        }
    finally:
        box.close()


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM recent_keys").fetchone()[0])


def test_an_older_agents_json_window_becomes_rows(tmp_path: Path) -> None:
    """Before the key table, each device's window was a JSON list in `device_state`."""
    box = reopened(tmp_path / "o.sqlite")
    legacy = [
        StateUpdate("d1", outbox_keys.LEGACY_STATE, json.dumps(["a1", "a2", 5])),
        StateUpdate("d2", outbox_keys.LEGACY_STATE, "not json"),
        StateUpdate("d1", "settings_hash", "abc"),
    ]
    box.append_blocking([trip(1)], legacy)
    box.close()
    box = reopened(tmp_path / "o.sqlite")
    try:
        assert box.recent_keys() == {"d1": ["a1", "a2"]}
        assert box.device_state() == {("d1", "settings_hash"): "abc"}
        box.append_blocking([trip(2)], keys={"d1": ["a3"]})
        assert box.recent_keys() == {"d1": ["a1", "a2", "a3"]}
    finally:
        box.close()
