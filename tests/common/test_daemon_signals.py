"""A daemon's signals, in a real process: SIGUSR1 reports and goes on; a stop that hangs
reports what it hangs on and exits instead of lingering."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from common.daemon_signals import EXIT_STUCK

# A daemon whose one task will not stop: it takes its cancellation for an error to retry,
# as a retry loop behind 3.11's wait_for did. `block` makes the stop block the loop too.
CHILD = """
import asyncio, sys, time
from common import daemon_signals

async def reconnect_for_ever():
    while True:
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if sys.argv[1] == "block":
                time.sleep(60)  # the event loop stops turning
            continue  # "connect failed, retrying"

async def main():
    task = asyncio.create_task(reconnect_for_ever(), name="link deaf")
    daemon_signals.install(task.cancel, grace_s=1.0)
    print("ready", flush=True)
    await task

asyncio.run(main())
"""


def _start(mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    return proc


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the process lingered after its stop:\n{err}")
    return proc.returncode, err


def test_sigusr1_reports_the_tasks_and_the_daemon_goes_on() -> None:
    proc = _start("retry")
    proc.send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    assert proc.poll() is None, "SIGUSR1 stopped the daemon"
    proc.kill()
    _, err = _finish(proc)
    assert "SIGUSR1: what pid" in err
    assert "task 'link deaf'" in err
    assert "in reconnect_for_ever" in err
    assert "threads:" in err
    assert "--- end of report ---" in err


def test_a_stop_that_hangs_reports_its_tasks_and_exits_stuck() -> None:
    proc = _start("retry")
    proc.send_signal(signal.SIGTERM)
    code, err = _finish(proc)
    assert code == EXIT_STUCK, err
    assert "stop still running after 1 s" in err
    assert "task 'link deaf' (cancel requested)" in err
    assert "in reconnect_for_ever" in err


def test_a_stop_that_blocks_the_loop_still_ends_with_the_threads_stacks() -> None:
    proc = _start("block")
    proc.send_signal(signal.SIGTERM)
    code, err = _finish(proc)
    assert code == 1, err  # faulthandler's exit: the loop could not report
    assert "Timeout (0:00:06)!" in err
    assert "reconnect_for_ever" in err  # the main thread's stack, blocked in the task
