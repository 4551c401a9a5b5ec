"""ThingsBoard IoT Gateway as a bench peer: its pinned virtualenv, its config, its launch.

Used by `compare_thingsboard.py`. The gateway (`thingsboard-gateway` 3.8.5, PyPI) lives in
its own virtualenv, `var/bench/tb-venv`, created from the package registry on first use
with the pymodbus its Modbus connector would otherwise pip-install itself at start-up.
Its configuration is the package's own `tb_gateway.json` (memory storage) with the
broker, a token and the Modbus connector filled in, statistics and remote configuration
off; one wide-range `timeseries` entry per unit (`address = "0-33"`, 17 u32 values)
makes one read of 34 registers per poll, as our agent does.

Two things ThingsBoard's server would do are done here: the gateway's `getSessionLimits`
request is answered with no limits (`session_limits_reply`), and its update check,
which posts to the vendor's server at start and hourly, is replaced by nothing so that
the bench stays on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulator.harness.broker import Mosquitto

ROOT = Path(__file__).resolve().parents[1]
TB_VERSION = "3.8.5"
TB_PYMODBUS = "3.9.2"  # what its Modbus connector pins (it pip-installs it when missing)
TB_VENV = ROOT / "var" / "bench" / "tb-venv"
TB_RPC = "v1/devices/me/rpc"
# The gateway posts to its vendor's update service at start and hourly; a bench stays on
# loopback, so that check is replaced by nothing (and any other HTTP goes to a dead proxy).
TB_MAIN = (
    "import thingsboard_gateway.tb_utility.tb_updater as u\n"
    "u.TBUpdater.check_for_new_version = lambda self: None\n"
    "from thingsboard_gateway.tb_gateway import main\n"
    "main()\n"
)
DEAD_PROXY = "http://127.0.0.1:9"


def ensure_tb_venv() -> Path:
    """The gateway's own virtualenv, created and filled from the package registry once."""
    python = TB_VENV / "bin" / "python"
    check = [str(python), "-c", "from importlib import metadata as m; "
             "print(m.version('thingsboard-gateway'), m.version('pymodbus'))"]  # fmt: skip
    if python.exists():
        found = subprocess.run(check, check=False, capture_output=True, text=True).stdout.split()
        if found == [TB_VERSION, TB_PYMODBUS]:
            return python
    TB_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(TB_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"thingsboard-gateway=={TB_VERSION}",
         f"pymodbus=={TB_PYMODBUS}", "pyserial", "pyserial-asyncio"],
        check=True,
    )  # fmt: skip
    return python


def tb_config(
    work: Path, python: Path, broker: Mosquitto, base_port: int, units: int, interval: float
) -> Path:
    """The package's default gateway config, pointed at the bench's broker and simulator."""
    package = subprocess.run(
        [str(python), "-c", "import thingsboard_gateway, os; "
         "print(os.path.dirname(thingsboard_gateway.__file__))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    defaults = Path(package) / "config"
    config = work / "config"
    config.mkdir(parents=True)
    gateway = json.loads((defaults / "tb_gateway.json").read_text())
    tb = gateway["thingsboard"]
    tb.update(host=broker.host, port=broker.port, remoteShell=False, remoteConfiguration=False)
    tb["security"] = {"type": "accessToken", "accessToken": "bench"}
    tb["statistics"]["enable"] = False
    gateway["connectors"] = [{"type": "modbus", "name": "Modbus", "configuration": "modbus.json"}]
    (config / "tb_gateway.json").write_text(json.dumps(gateway, indent=2))
    logs = json.loads((defaults / "logs.json").read_text())
    for logger in logs["loggers"].values():
        logger["level"] = "WARNING"
    (config / "logs.json").write_text(json.dumps(logs, indent=2))
    slaves = [
        {"host": "127.0.0.1", "port": base_port + i, "type": "tcp", "method": "socket",
         "unitId": 1, "deviceName": f"u{i}", "deviceType": "default", "timeout": 35,
         "byteOrder": "BIG", "wordOrder": "BIG", "retries": 3, "retryOnEmpty": True,
         "retryOnInvalid": True, "pollPeriod": round(interval * 1000),
         "connectAttemptTimeMs": 5000, "connectAttemptCount": 5,
         "waitAfterFailedAttemptsMs": 300000, "attributes": [],
         "timeseries": [{"tag": "r_${address}", "type": "32uint", "functionCode": 3,
                         "objectsCount": 2, "address": "0-33", "maxRegistersPerRequest": 34}],
         "attributeUpdates": [], "rpc": []}
        for i in range(units)
    ]  # fmt: skip
    (config / "modbus.json").write_text(json.dumps({"master": {"slaves": slaves}}, indent=2))
    return config


def start_gateway(python: Path, config: Path, work: Path, log: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TB_GW_CONFIG_DIR": f"{config}/", "HTTPS_PROXY": DEAD_PROXY,
           "HTTP_PROXY": DEAD_PROXY, "NO_PROXY": ""}  # fmt: skip
    return subprocess.Popen(
        [str(python), "-c", TB_MAIN], stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env
    )


def telemetry_sequences(body: Any) -> list[tuple[int, int]]:
    """(unit, sequence) in one `v1/gateway/telemetry` message: {device: [{ts, values}]}."""
    found = []
    for device, entries in body.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            values = entry.get("values", entry)
            if "r_0" in values:
                found.append((int(device[1:]), int(values["r_0"])))
    return found


def session_limits_reply(request: dict[str, Any]) -> dict[str, Any] | None:
    """What a ThingsBoard without rate limits answers to the gateway's first request."""
    if request.get("method") != "getSessionLimits":
        return None
    return {"maxPayloadSize": 65536, "maxInflightMessages": 100,
            "rateLimits": {}, "gatewayRateLimits": {}}  # fmt: skip
