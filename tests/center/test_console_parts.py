"""The console's parts on their own: the sequence-of-events chart's axis and marks, the
login limiter, and `relay-center user` as a command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from center.auth.ratelimit import LoginLimiter
from center.web.charts import Mark, mark_kind, soe_chart


def _x(svg: str, title: str) -> float:
    """The x of the mark with this tooltip."""
    found = re.search(rf'data-x="([\d.]+)"[^>]*><title>{re.escape(title)}</title>', svg)
    assert found, title
    return float(found.group(1))


def test_the_chart_keeps_milliseconds_and_shortens_quiet_gaps():
    marks = [
        Mark("line1", 0, "start", True, "start", "line1 start"),
        Mark("line1", 21, "trip", True, "trip", "line1 trip"),
        Mark("busbar", 27, "breaker_failure", True, "bf", "busbar bf"),
        Mark("line1", 900, "reclose", True, "reclose", "line1 reclose"),
    ]
    svg = str(soe_chart(marks, ["line1", "busbar"]))
    assert svg.count('class="lane"') == 2
    start, trip, bf = _x(svg, "line1 start"), _x(svg, "line1 trip"), _x(svg, "busbar bf")
    reclose = _x(svg, "line1 reclose")
    assert start < trip < bf < reclose
    assert abs((bf - trip) / (trip - start) - 6 / 21) < 0.02  # true proportion inside
    assert reclose - bf < 3 * (bf - start)  # 873 ms drawn short…
    assert "+873 ms" in svg  # …and labelled with its real length


def test_marks_read_the_protection_vocabulary():
    assert mark_kind("trip", "trip_phase_a") == "trip"
    assert mark_kind("start", "bf_init_phase_a") == "breaker_failure"
    assert mark_kind("status", "reclose") == "reclose"
    assert mark_kind("start", "start") == "start"
    assert mark_kind("self_check", "self_check_fail") == "alarm"
    assert mark_kind("status", "breaker_closed") == "status"


def test_the_login_limiter_counts_per_key_within_its_window():
    limiter = LoginLimiter(attempts=2, window_s=60)
    keys = ["user:olga", "addr:10.0.0.1"]
    limiter.failed(keys, 0.0)
    assert limiter.retry_after(keys, 1.0) == 0
    limiter.failed(keys, 1.0)
    assert limiter.retry_after(["user:olga"], 2.0) == 58.0
    assert limiter.retry_after(["addr:10.0.0.1", "user:vera"], 2.0) == 58.0
    assert limiter.retry_after(keys, 61.5) == 0  # the first failure left the window
    limiter.failed(keys, 62.0)
    limiter.succeeded(keys)  # the user's count is cleared, the address's stays
    assert limiter.retry_after(["user:olga"], 62.5) == 0


def _user(config: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "center.cli", "user", *args[:1], "--config", str(config), *args[1:]],
        input=password + "\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_user_commands(tmp_path):
    config = tmp_path / "center.toml"
    config.write_text(f'[center]\nstate_dir = "{tmp_path}"\n')
    added = _user(
        config, "add", "olga", "--role", "operator", "--password-stdin", password="long-enough-1"
    )
    assert added.returncode == 0
    assert "user olga added (operator)" in added.stdout
    again = _user(
        config, "add", "olga", "--role", "viewer", "--password-stdin", password="long-enough-1"
    )
    assert again.returncode == 1
    assert "exists already" in again.stderr
    weak = _user(config, "add", "vera", "--role", "viewer", "--password-stdin", password="short")
    assert weak.returncode == 1
    assert "at least 10 characters" in weak.stderr
    bad_name = _user(
        config, "add", "x y", "--role", "viewer", "--password-stdin", password="long-enough-1"
    )
    assert bad_name.returncode == 1
    assert "username: expected" in bad_name.stderr
    assert (
        _user(config, "passwd", "olga", "--password-stdin", password="another-one-2").returncode
        == 0
    )
    assert _user(config, "role", "olga", "--role", "engineer").returncode == 0
    listed = _user(config, "list")
    assert re.search(r"olga\s+engineer", listed.stdout)
    assert _user(config, "remove", "olga").returncode == 0
    gone = _user(config, "remove", "olga")
    assert gone.returncode == 1
    assert "no user 'olga'" in gone.stderr
    assert "no users" in _user(config, "list").stdout
