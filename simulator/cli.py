"""`relay-sim`: run simulated relays from a scenario, or generate load for benchmarks.

relay-sim --list                                   # the shipped scenarios
relay-sim --scenario seed-phase-a-fault            # play it, then hold
relay-sim --scenario FILE --speed 10 --no-hold --wait-for-clients 3
relay-sim --load --relays 20 --rate 1000 --duration 10 --base-port 25000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from common.cli_options import add_version_option
from common.errors import ConfigError
from simulator.scenario import SCENARIOS_DIR, load_scenario


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relay-sim", description=__doc__.split("\n")[0])
    add_version_option(p)
    p.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    p.add_argument("--scenario", help="scenario file, or a name in config/scenarios/")
    p.add_argument("--speed", type=float, default=1.0, help="time factor (2 = twice as fast)")
    p.add_argument("--hold", action=argparse.BooleanOptionalAction, default=True,
                   help="keep the relays running after the last step (default: hold)")  # fmt: skip
    p.add_argument("--wait-for-clients", type=int, default=0, metavar="N",
                   help="before playing, wait until N relays have a master connected")  # fmt: skip
    p.add_argument("--wait-timeout", type=float, default=120.0, metavar="S")
    p.add_argument("-v", "--verbose", action="store_true")
    load = p.add_argument_group("load generator (benchmarks)")
    load.add_argument("--load", action="store_true", help="generate paced IEC 104 events")
    load.add_argument("--relays", type=int, default=20)
    load.add_argument("--rate", type=float, default=1000.0, help="events/s over all relays")
    load.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    load.add_argument("--base-port", type=int, default=25000, help="relay i listens on this + i")
    load.add_argument("--points", type=int, default=20, help="single points per relay")
    load.add_argument("--batch", type=int, default=20, help="events per ASDU (c104.Batch)")
    return p


def _resolve(ref: str) -> Path:
    path = Path(ref)
    if path.exists() or "/" in ref or ref.endswith(".toml"):
        return path
    return SCENARIOS_DIR / f"{ref}.toml"


def _list() -> int:
    for path in sorted(SCENARIOS_DIR.glob("*.toml")):
        try:
            scenario = load_scenario(path)
        except ConfigError as exc:
            print(f"{path.stem:<28} INVALID: {exc}")
            continue
        relays = ", ".join(f"{r.id}({r.protocol})" for r in scenario.relays)
        print(f"{path.stem:<28} {len(scenario.steps):>3} steps  {relays}")
        if scenario.header.description:
            print(f"{'':<28} {scenario.header.description}")
    return 0


async def _play(args: argparse.Namespace) -> int:
    from simulator.runner import ScenarioRunner

    scenario = load_scenario(_resolve(args.scenario))
    runner = ScenarioRunner(scenario, speed=args.speed, progress=print)
    await runner.start()
    try:
        await runner.wait_for_clients(args.wait_for_clients, args.wait_timeout)
        await runner.play()
        if args.hold:
            await runner.hold()
    finally:
        await runner.stop()
    return 0


async def _load(args: argparse.Namespace) -> int:
    from simulator.relays.iec104.load import LoadGenerator

    gen = LoadGenerator(args.relays, args.base_port, points=args.points, batch=args.batch)
    gen.start()
    try:
        print(f"{args.relays} relays on ports {args.base_port}..{args.base_port + args.relays - 1}"
              f" (common address = index + 1)")  # fmt: skip
        if args.wait_for_clients:
            print(f"waiting for masters on all {args.relays} relays")
            await gen.wait_for_clients(args.wait_timeout)
        print(f"sending {args.rate:g} events/s for {args.duration:g}s")
        await gen.run(args.rate, args.duration, progress=print)
        if args.hold:
            print("holding (Ctrl-C to stop)")
            await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(gen.stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.list:
        return _list()
    if not args.load and not args.scenario:
        _parser().error("give --scenario FILE, --list, or --load")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_load(args) if args.load else _play(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except TimeoutError:
        print("timed out waiting for masters", file=sys.stderr)
        return 3
    return 130


if __name__ == "__main__":
    sys.exit(main())
