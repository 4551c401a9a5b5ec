"""`relay-demo`, headless: the README's first command, as a newcomer runs it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from simulator.harness.broker import free_port, mosquitto_binary

TICKET = re.compile(r"^ticket #(\d+)\s+(opened|changed)\s+(\S+)\s+(P\d)\s+(.*)  \[(.*) -> (\S+)\]$")


def _get(url: str, token: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)


def _console_queue(url: str, user: str, password: str) -> str:
    """Log in to the console the demo printed and return its queue page."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{url}login", timeout=5) as page:
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.read().decode())
    assert csrf is not None
    form = urllib.parse.urlencode(
        {"username": user, "password": password, "csrf": csrf[1], "next": "/queue"}
    ).encode()
    with opener.open(f"{url}login", data=form, timeout=10) as queue:  # follows to /queue
        return str(queue.read().decode())


async def start_demo(*argv: str) -> tuple[asyncio.subprocess.Process, asyncio.StreamReader]:
    """`relay-demo ARGV` as a child process; its output, stdout and stderr together."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "demo", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout


async def run_demo(workdir: Path, broker: str) -> tuple[list[str], object]:
    """Run the demo for 30 s; while it holds after the scenario, ask its API for tickets."""
    proc, output = await start_demo(
        "--duration", "30", "--broker", broker, "--workdir", str(workdir),
        "--api-port", str(free_port()),
    )  # fmt: skip
    lines: list[str] = []
    api_tickets: object = None
    api = ("", "")
    console = ("", "", "")
    try:
        async with asyncio.timeout(120):
            async for raw in output:
                line = raw.decode().rstrip("\n")
                lines.append(line)
                if m := re.match(r"center API (http://\S+)/docs\s+\(token: (\S+)\)", line):
                    api = (m[1] + "/api/v1", m[2])
                if m := re.match(r"console\s+(http://\S+/)\s+\(log in as (\S+) / (\S+)\)", line):
                    console = (m[1], m[2], m[3])
                if line.startswith("scenario   played"):
                    api_tickets = await asyncio.to_thread(_get, f"{api[0]}/tickets", api[1])
                    queue = await asyncio.to_thread(_console_queue, *console)
                    lines.append(f"console queue: {'Protection operation' in queue}")
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return lines, api_tickets


def _final_tickets(lines: list[str]) -> dict[int, tuple[str, ...]]:
    """Per ticket id, its last printed (state, priority, title, devices, service point)."""
    out: dict[int, tuple[str, ...]] = {}
    for line in lines:
        if m := TICKET.match(line):
            out[int(m[1])] = (m[3], m[4], m[5], m[6], m[7])
    return out


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
async def test_demo_shows_the_seed_incident_as_one_ticket(tmp_path: Path, broker: str) -> None:
    if broker == "mosquitto" and mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed: scripts/setup installs it")
    lines, api_tickets = await run_demo(tmp_path / "demo", broker)
    output = "\n".join(lines)
    tickets = _final_tickets(lines)
    protection = [t for t in tickets.values() if t[2].startswith("Protection operation")]
    assert len(protection) == 1, output  # the seed's three relays: one ticket, not three
    assert protection[0][:2] == ("open", "P1"), output
    assert protection[0][3:] == ("busbar, line1, line2, line3-103", "sp-north"), output
    # the 103 relay's disturbance record, fetched, analysed and attached to the P1 ticket
    p1 = next(n for n, t in tickets.items() if t[2].startswith("Protection operation"))
    records = [line for line in lines if line.startswith("record ")]
    assert records == [
        f"record     line3-103 fault 1 on ticket #{p1}: AG fault; IA 6000 A RMS (peak 8403 A); "
        "cleared in 65 ms; trip at 21 ms; dip UA -60 %"
    ], output
    titles = sorted((t[2].split(" at ")[0], t[3], t[0]) for t in tickets.values())
    assert titles == [
        ("Device alarm ct circuit alarm", "feeder7", "resolved"),  # cleared, held, resolved
        ("Device comms lost", "feeder7", "resolved"),  # the relay came back
        ("Device self-check failure", "line3-103", "open"),  # IEC 103 group alarm
        ("Protection operation", "busbar, line1, line2, line3-103", "open"),  # for a person
        ("Settings drift", "feeder7", "open"),  # i_pickup raised on the relay: P2, protection
    ], output
    drift = next(t for t in tickets.values() if t[2].startswith("Settings drift"))
    assert drift[1] == "P2", output
    # the API was up while the demo held, and said the same
    assert isinstance(api_tickets, list), output
    assert len(api_tickets) == 5
    assert {tuple(t["devices"]) for t in api_tickets} == {
        ("busbar", "line1", "line2", "line3-103"),
        ("feeder7",),
        ("line3-103",),
    }
    assert "console queue: True" in lines, output  # the printed login works, the P1 is there
    assert "Traceback" not in output, output


async def test_the_printed_follow_up_commands_run_as_pasted(tmp_path: Path) -> None:
    """Each `try` line is a shell command that works when pasted into a shell: real paths,
    the real ticket number, remote polling on. And a taken API port is said, not hidden."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy_port = taken.getsockname()[1]
        proc, stream = await start_demo(
            "--duration", "60", "--workdir", str(tmp_path / "demo"), "--api-port", str(busy_port)
        )
        lines: list[str] = []
        ran: dict[str, tuple[int, str]] = {}
        try:
            async with asyncio.timeout(150):
                async for raw in stream:
                    line = raw.decode().rstrip("\n")
                    lines.append(line)
                    if m := re.match(r"try\s+[^:]+: (.*)$", line):
                        ran[line] = await _shell(m[1])
                    if len(ran) == 4:
                        break
        finally:
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(60):
                await proc.wait()
    output = "\n".join(lines)
    assert f"center API port {busy_port} is taken: using " in output, output
    assert len(ran) == 4, output  # relay-agent status, resolve, approve, remote poll
    for line, (code, out) in ran.items():
        assert code == 0, f"{line}\n{out}"
    resolve = next(v for k, v in ran.items() if "waits for a person" in k)
    ticket = json.loads(resolve[1])
    assert (ticket["state"], ticket["root_cause"]) == ("resolved", "line_fault")
    poll = next(v for k, v in ran.items() if "through its agent" in k)
    assert poll[1].startswith("line1 on gw-north-1 (north-220kv): identity"), poll[1]
    status = next(v for k, v in ran.items() if "status --config" in k)
    assert "feeder7" in status[1]
    assert "line3-103" in status[1]
    assert "/tickets/ID/" not in output


async def _shell(command: str) -> tuple[int, str]:
    """Run a printed line as a person pastes it: through a shell, PATH as it is."""
    proc = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()
