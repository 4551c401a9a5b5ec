"""Bench only (`bench/thread_cpu.py`): give each Python thread its name in the OS, so
/proc tells the agent's threads apart. On the path only of processes a bench measures."""

import ctypes
import threading

_PR_SET_NAME = 15
_libc = ctypes.CDLL(None, use_errno=True)


def _name_os_thread(name: str) -> None:
    _libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


_bootstrap_inner = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _named_bootstrap(self: threading.Thread) -> None:
    _name_os_thread(self.name)
    _bootstrap_inner(self)


threading.Thread._bootstrap_inner = _named_bootstrap  # type: ignore[attr-defined]
_name_os_thread("loop")
