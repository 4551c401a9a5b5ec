"""A bare c104 client that only counts: the ceiling the agent is compared with.

Run by `compare_c104.py` in its own process, so its CPU is its own: one c104 `Client` per
relay (ports `base_port + i`, common address `i + 1`, M_SP_TB_1 points 1..20), a callback
that stamps each spontaneous event's arrival, nothing else (no conversion, no storage, no
MQTT). It counts until a line arrives on stdin, then prints one JSON line: events, rate
(first to last arrival), the last arrival (epoch s), and the latency from the event's
CP56 time, p50 and p99 in ms.

    .venv/bin/python bench/bare104_client.py 20 26000
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

import c104

POINTS = 20


def rate_and_latency(arrivals: list[float], latencies: list[float]) -> tuple[float, float, float]:
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    lat = sorted(latencies) or [0.0]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return (len(arrivals) / span if span else 0.0), 1000 * statistics.median(lat), 1000 * p99


@dataclass
class Counting:
    """Started c104 clients and what their callbacks recorded (under `lock`)."""

    clients: list[c104.Client] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        for client in self.clients:
            client.stop()


def start_clients(relays: int, base_port: int, points: int = POINTS) -> Counting:
    """One started c104 client per relay, stamping each spontaneous event's arrival."""
    counting = Counting()

    def on_point(
        point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage
    ) -> c104.ResponseState:
        if message.cot == c104.Cot.SPONTANEOUS:
            now = time.time()
            sent = message.info.recorded_at
            with counting.lock:
                counting.arrivals.append(now)
                if sent is not None:
                    counting.latencies.append(now - sent.timestamp())
        return c104.ResponseState.SUCCESS

    def on_state(connection: c104.Connection, state: c104.ConnectionState) -> None:
        if state == c104.ConnectionState.OPEN_MUTED:  # the stuck-muted workaround
            connection.unmute()

    on_point.__annotations__ = {  # c104 checks the callback's annotations as objects
        "point": c104.Point, "previous_info": c104.Information,
        "message": c104.IncomingMessage, "return": c104.ResponseState,
    }  # fmt: skip
    on_state.__annotations__ = {
        "connection": c104.Connection, "state": c104.ConnectionState, "return": None,
    }  # fmt: skip
    for i in range(relays):
        client = c104.Client(tick_rate_ms=100)
        conn = client.add_connection(ip="127.0.0.1", port=base_port + i, init=c104.Init.MUTED)
        assert conn is not None
        conn.on_state_change(callable=on_state)
        station = conn.add_station(common_address=i + 1)
        assert station is not None
        for ioa in range(1, points + 1):
            point = station.add_point(io_address=ioa, type=c104.Type.M_SP_TB_1)
            assert point is not None
            point.on_receive(callable=on_point)
        client.start()
        counting.clients.append(client)
    return counting


def main(relays: int, base_port: int) -> None:
    """Count until stdin says stop, then print the JSON line."""
    counting = start_clients(relays, base_port)
    sys.stdin.readline()
    counting.stop()
    with counting.lock:
        arrivals = counting.arrivals
        rate, p50, p99 = rate_and_latency(arrivals, counting.latencies)
        last = arrivals[-1] if arrivals else 0.0
        print(json.dumps({"delivered": len(arrivals), "rate": rate, "last": last,
                          "p50": p50, "p99": p99}))  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
