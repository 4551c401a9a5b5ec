"""Login rate limiting: at most N failed logins per username and per client address in a
sliding window; past that, logins are refused (even with the right password) until the
oldest failure leaves the window. In memory: a restart forgets, which costs an attacker a
center restart per N guesses, and each guess costs an argon2 run anyway."""

from __future__ import annotations

import threading
from collections import deque


class LoginLimiter:
    def __init__(self, attempts: int, window_s: float, max_keys: int = 10_000) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, keys: list[str], now: float) -> float:
        """Seconds until a login may be tried for these keys (0: now)."""
        with self._lock:
            wait = 0.0
            for key in keys:
                q = self._recent(key, now)
                if len(q) >= self.attempts:
                    wait = max(wait, q[0] + self.window_s - now)
            return wait

    def failed(self, keys: list[str], now: float) -> None:
        with self._lock:
            if len(self._failures) >= self.max_keys:  # bounded memory under a spray
                oldest = min(self._failures, key=lambda k: self._failures[k][-1])
                del self._failures[oldest]
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys[:1]:  # the username's count; the address's stays
                self._failures.pop(key, None)
