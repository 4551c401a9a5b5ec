"""Scenario playing, the CLI, and the load generator."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import pytest

from protocols.errors import LinkError
from simulator import cli
from simulator.relays.iec104.load import LoadGenerator
from simulator.relays.iec104.relay import Iec104Relay
from simulator.runner import ScenarioRunner, relocate
from simulator.scenario import SEED_SCENARIO, Scenario, load_scenario
from tests.protocols.iec104.helpers import RecordingSink, device, driver_for, free_port, wait_until


def _seed_on_free_ports() -> Scenario:
    scenario = load_scenario(SEED_SCENARIO)
    return relocate(scenario, {r.id: {"port": free_port()} for r in scenario.relays})


def test_relocate_changes_only_the_given_link_keys() -> None:
    scenario = load_scenario(SEED_SCENARIO)
    moved = relocate(scenario, {"line1": {"port": 31000}})
    assert moved.relay("line1").link == {"port": 31000, "common_address": 1}
    assert moved.relay("line2").link == scenario.relay("line2").link
    assert [s.model_dump() for s in moved.steps] == [s.model_dump() for s in scenario.steps]


async def test_runner_plays_every_step_with_scenario_spacing() -> None:
    lines: list[str] = []
    runner = ScenarioRunner(_seed_on_free_ports(), speed=8.0, progress=lines.append)
    await runner.start()
    try:
        await runner.play()
        relays = dict(runner.relays)
    finally:
        await runner.stop()
    steps = runner.scenario.steps
    assert [p.step for p in runner.played] == steps
    first = runner.played[0].device_time
    for played in runner.played:
        offset = played.device_time - first
        # Deterministic: at_ms / speed, truncated to the ms (not the scheduler's jitter).
        assert abs(offset - timedelta(milliseconds=played.step.at_ms / 8)) < timedelta(
            milliseconds=1
        )
        assert played.device_time.microsecond % 1000 == 0
    # No master connected: a relay keeps its events in its buffer, like a real one.
    line1 = relays["line1"]
    assert isinstance(line1, Iec104Relay)
    assert line1.backlog == sum(1 for s in steps if s.relay == "line1")
    assert not line1.sent
    assert any("trip_phase_a@1011" in line for line in lines)


def test_cli_lists_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--list"]) == 0
    assert "seed-phase-a-fault" in capsys.readouterr().out


def test_cli_needs_a_mode() -> None:
    with pytest.raises(SystemExit):
        cli.main([])


def test_cli_plays_a_scenario_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SEED_SCENARIO.read_text()
    for port in ("24041", "24042", "24043"):
        text = text.replace(f"port = {port}", f"port = {free_port()}")
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    assert cli.main(["--scenario", str(path), "--speed", "20", "--no-hold"]) == 0
    out = capsys.readouterr().out
    assert "scenario done" in out
    assert "busbar" in out


def test_cli_reports_a_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[scenario]\nname = "x"\n')
    assert cli.main(["--scenario", str(path), "--no-hold"]) == 2
    assert "relays" in capsys.readouterr().err


async def test_load_generator_sends_paced_events_that_all_arrive() -> None:
    base = free_port()
    gen = LoadGenerator(2, base, points=10, batch=5)
    gen.start()
    sink = RecordingSink()
    drivers = [driver_for(device(f"r{i}", base + i, i + 1)) for i in range(2)]
    tasks = [asyncio.create_task(d.run(sink)) for d in drivers]
    try:
        await gen.wait_for_clients(30)
        await wait_until(lambda: len(sink.points(cause="interrogated")) >= 20)
        result = await gen.run(rate=400, duration_s=1.0)
        assert result.sent > 0
        assert result.skipped_batches == 0
        await wait_until(lambda: len(sink.points(cause="spontaneous")) >= result.sent)
        assert len(sink.points(cause="spontaneous")) == result.sent
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, LinkError):
                await t
        await asyncio.to_thread(gen.stop)
