"""A run of consecutive free loopback ports, for benches that start one listener per relay.

Other processes on a shared machine hold ports at random, so a base port from one free
port says nothing about the next 99: this binds each of them once before handing the
run out (a race remains, and the benches retry on a failed bind).
"""

from __future__ import annotations

import random
import socket


def free_port_run(count: int, low: int = 20000, high: int = 60000) -> int:
    """The first of `count` consecutive ports on 127.0.0.1 that could all be bound now."""
    for _ in range(200):
        base = random.randrange(low, high - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise RuntimeError(f"no {count} consecutive free ports between {low} and {high}")
