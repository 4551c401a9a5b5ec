"""How a daemon answers signals: SIGTERM and SIGINT stop it; SIGUSR1 shows what it is doing.

A stop that hangs must say why. `kill -USR1 <pid>` prints every asyncio task with the line
it waits on, and every thread's stack, to stderr (the journal under systemd), and the
daemon goes on. A stop that has not ended after `STOP_GRACE_S` prints the same and exits
with `EXIT_STUCK`: under systemd (TimeoutStopSec=30s) the unit would otherwise be killed
without a word, and anywhere else the process would linger for ever. If the event loop
itself is stuck, or the exit waits on a thread that never ends, `faulthandler` prints the
threads a few seconds later and exits with 1.

Giving up is safe for the agent: its outbox is durable at every commit (a SIGKILL loses
nothing), so what a hung stop skips is its goodbye (the death record), not data.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0  # under the units' TimeoutStopSec=30s: the report comes first
EXIT_STUCK = 70  # EX_SOFTWARE (sysexits.h): the stop itself failed
STACK_LIMIT = 12  # frames per task
BACKSTOP_S = 5.0  # after the deadline, when the loop could not even report


def task_report(loop: asyncio.AbstractEventLoop) -> str:
    """Every task of `loop`, each with its name and the frames it waits in, innermost last."""
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    out.write(f"{len(tasks)} asyncio tasks:\n")
    for task in tasks:
        state = " (cancel requested)" if task.cancelling() else ""
        out.write(f"- task {task.get_name()!r}{state}: {task.get_coro()!r}\n")
        for frame in task.get_stack(limit=STACK_LIMIT):
            code = frame.f_code
            out.write(f"    {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
    return out.getvalue()


def report(loop: asyncio.AbstractEventLoop, why: str, file: TextIO | None = None) -> None:
    """Write the tasks of `loop` and every thread's stack to `file` (stderr)."""
    file = file if file is not None else sys.stderr
    file.write(f"--- {why}: what pid {os.getpid()} is doing ---\n")
    file.write(task_report(loop))
    file.write("threads:\n")
    file.flush()
    faulthandler.dump_traceback(file, all_threads=True)
    file.write("--- end of report ---\n")
    file.flush()


def install(
    stop: Callable[[], object],
    grace_s: float = STOP_GRACE_S,
    exit_stuck: Callable[[int], None] = os._exit,
) -> None:
    """In the running loop: SIGTERM and SIGINT call `stop` once and arm the deadline,
    SIGUSR1 prints the report. Past the deadline: the report, then `exit_stuck(EXIT_STUCK)`
    (`os._exit`: a hung stop may hold the threads that a normal exit would join)."""
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.TimerHandle] = []

    def give_up() -> None:
        log.error("the stop did not end within %.0f s; giving up", grace_s)
        report(loop, f"stop still running after {grace_s:.0f} s")
        exit_stuck(EXIT_STUCK)

    def on_stop_signal() -> None:
        if stopping:
            return  # the deadline is armed; a second signal changes nothing
        stopping.append(loop.call_later(grace_s, give_up))
        # The backstop, for a loop that no longer turns or an exit that joins a thread
        # that never ends: thread stacks only, then _exit(1), from faulthandler's thread.
        faulthandler.dump_traceback_later(grace_s + BACKSTOP_S, exit=True)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_stop_signal)
    loop.add_signal_handler(signal.SIGUSR1, report, loop, "SIGUSR1")
