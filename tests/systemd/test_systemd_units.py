"""The shipped units pass `systemd-analyze verify` and the hardening target
(`systemd-analyze security --offline=true`: exposure 2.0 or less), and the sysusers.d and
tmpfiles.d snippets parse. systemd-analyze comes with the `systemd` package (Debian)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ci import in_ci

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNITS = {
    "relay-agent.service": "/opt/relay-service/venv/bin/relay-agent",
    "relay-center.service": "/opt/relay-service/venv/bin/relay-center",
}
MAX_EXPOSURE = 2.0

ANALYZE = shutil.which("systemd-analyze")
if ANALYZE is None and in_ci():
    raise RuntimeError("CI=true but systemd-analyze is missing: apt-get install systemd")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (Debian package: systemd)"
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _verifiable_copy(unit: str, binary: str, tmp_path: Path) -> Path:
    """The unit as shipped, except that ExecStart names /bin/true instead of the venv's
    entry point: `verify` fails on a missing executable ("Command … is not executable"),
    and the product is not installed under /opt on a test machine. Only the program path
    changes; its arguments and every other line are verified as shipped."""
    text = (SYSTEMD_DIR / unit).read_text()
    exec_lines = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert exec_lines == [line for line in exec_lines if line.startswith(f"ExecStart={binary} ")]
    assert len(exec_lines) == 1
    copy = tmp_path / unit
    copy.write_text(text.replace(f"ExecStart={binary} ", "ExecStart=/bin/true "))
    return copy


@needs_analyze
@pytest.mark.parametrize(("unit", "binary"), UNITS.items())
def test_unit_verifies_cleanly(unit: str, binary: str, tmp_path: Path) -> None:
    assert ANALYZE is not None
    copy = _verifiable_copy(unit, binary, tmp_path)
    result = _run(ANALYZE, "verify", "--man=no", str(copy))
    # verify exits 0 on an unknown key ("Unknown key name …, ignoring"): treat any message
    # about our unit as a failure too. Messages about the host's own units are not ours.
    ours = [line for line in result.stderr.splitlines() if unit in line or str(copy) in line]
    assert result.returncode == 0, result.stderr
    assert ours == [], "\n".join(ours)


def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive is reported."""
    if ANALYZE is None:
        pytest.skip("systemd-analyze not installed (Debian package: systemd)")
    unit = tmp_path / "typo.service"
    unit.write_text("[Service]\nExecStart=/bin/true\nWatchDogSec=3\n")
    result = _run(ANALYZE, "verify", "--man=no", str(unit))
    assert "Unknown key" in result.stderr


def exposure(unit_file: Path) -> float:
    assert ANALYZE is not None
    result = _run(ANALYZE, "security", "--offline=true", "--no-pager", str(unit_file))
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no exposure figure in:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1))


@needs_analyze
@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure_is_at_most_2(unit: str) -> None:
    assert ANALYZE is not None
    level = exposure(SYSTEMD_DIR / unit)
    assert level <= MAX_EXPOSURE, f"{unit}: exposure {level} > {MAX_EXPOSURE}"
    # The same through systemd's own gate (--threshold is in tenths).
    gate = _run(
        ANALYZE,
        "security",
        "--offline=true",
        "--no-pager",
        f"--threshold={int(MAX_EXPOSURE * 10)}",
        str(SYSTEMD_DIR / unit),
    )
    assert gate.returncode == 0, gate.stdout[-2000:]


@needs_analyze
def test_the_exposure_check_can_fail(tmp_path: Path) -> None:
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nExecStart=/bin/true\n")
    assert exposure(bare) > MAX_EXPOSURE


@pytest.mark.parametrize("unit", UNITS)
def test_unit_has_the_deployment_contract(unit: str) -> None:
    """What docs/operations.md promises, so a later edit cannot quietly drop it."""
    text = (SYSTEMD_DIR / unit).read_text()
    name = unit.removesuffix(".service")
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        f"StateDirectory={name}",
        f"ConfigurationDirectory={name}",
        f"User={name}",
        "RestartPreventExitStatus=2",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), f"{unit}: missing {line}"
    assert re.search(r"^WatchdogSec=\d+s$", text, re.M)
    assert f"--config /etc/{name}/" in text
    assert not re.search(r"^(User=root|DynamicUser=|AmbientCapabilities=\S)", text, re.M)


def test_agent_memory_is_capped_below_a_leak() -> None:
    """A leak in a protocol stack ends in a restart, not in a gateway out of memory."""
    text = (SYSTEMD_DIR / "relay-agent.service").read_text()
    limits = {
        key: int(value) for key, value in re.findall(r"^(MemoryHigh|MemoryMax)=(\d+)M$", text, re.M)
    }
    assert set(limits) == {"MemoryHigh", "MemoryMax"}, "relay-agent.service: memory limits"
    assert 128 <= limits["MemoryHigh"] < limits["MemoryMax"] <= 1024
    assert re.search(r"^MemorySwapMax=0$", text, re.M)


def test_agent_reaches_serial_ports_through_dialout_only() -> None:
    text = (SYSTEMD_DIR / "relay-agent.service").read_text()
    assert re.search(r"^SupplementaryGroups=dialout$", text, re.M)
    assert re.search(r"^DevicePolicy=closed$", text, re.M)
    allowed = re.findall(r"^DeviceAllow=(\S+) (\S+)$", text, re.M)
    assert {dev for dev, _ in allowed} == {"char-ttyS", "char-ttyUSB", "char-ttyACM"}
    assert re.search(r"^CapabilityBoundingSet=$", text, re.M)


def test_sysusers_snippet_parses_and_puts_the_agent_in_dialout(tmp_path: Path) -> None:
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        pytest.skip("systemd-sysusers not installed (Debian package: systemd)")
    conf = SYSTEMD_DIR / "sysusers.d" / "relay-service.conf"
    (tmp_path / "etc").mkdir()
    result = _run(tool, "--dry-run", f"--root={tmp_path}", str(conf))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "Creating user 'relay-agent'" in out
    assert "Creating user 'relay-center'" in out
    assert "dialout" in out


def test_tmpfiles_snippet_creates_the_key_directories(tmp_path: Path) -> None:
    sysusers, tmpfiles = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
    if sysusers is None or tmpfiles is None:
        pytest.skip("systemd-sysusers/-tmpfiles not installed (Debian package: systemd)")
    if os.geteuid() != 0:
        pytest.skip("creating root-owned directories in a scratch root needs root")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    made = _run(sysusers, f"--root={root}", str(SYSTEMD_DIR / "sysusers.d" / "relay-service.conf"))
    assert made.returncode == 0, made.stderr
    result = _run(
        tmpfiles,
        "--create",
        f"--root={root}",
        str(SYSTEMD_DIR / "tmpfiles.d" / "relay-service.conf"),
    )
    assert result.returncode == 0, result.stderr
    tls = root / "etc" / "relay-agent" / "tls"
    assert tls.is_dir()
    assert tls.stat().st_mode & 0o777 == 0o750


def test_agent_runs_on_the_allocator_its_unit_preloads() -> None:
    """The unit's LD_PRELOAD and MALLOC_CONF, given to a Python process as systemd would:
    jemalloc is mapped and takes the configuration (a wrong name or option would show:
    the loader warns and leaves glibc, jemalloc reports an invalid conf on stderr)."""
    text = (SYSTEMD_DIR / "relay-agent.service").read_text()
    env = dict(re.findall(r"^Environment=(LD_PRELOAD|MALLOC_CONF)=(\S+)$", text, re.M))
    assert set(env) == {"LD_PRELOAD", "MALLOC_CONF"}, "relay-agent.service: allocator"
    probe = "print(open('/proc/self/maps').read())"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "libjemalloc.so.2" in done.stdout
    assert done.stderr == ""
