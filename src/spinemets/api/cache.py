"""A bounded in-process cache of JSON responses of the pure core functions.

Every instrument is a pure function of its input and of the knowledge base, which is immutable for the
life of the process, so the same request body always gives the same response bytes.  Repeated bodies are
common (the live SINS form re-sends the same components; the input space of SINS is a few thousand
combinations), and a hit costs a dictionary lookup instead of the computation and serialisation.  Keys
are the endpoint and the exact body bytes; entries are evicted least recently used once the cache holds
more than ``max_bytes`` (keys and values counted).  Set ``SPINEMETS_RESPONSE_CACHE=0`` to disable it.
Each worker process has its own cache; the event loop is single-threaded, so no lock is needed.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
MAX_KEY_BYTES = 16 * 1024  # larger bodies are computed every time


class ResponseCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()

    def get(self, name: str, body: bytes) -> bytes | None:
        key = (name, body)
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, name: str, body: bytes, value: bytes) -> None:
        if len(body) > MAX_KEY_BYTES or len(value) + len(body) > self.max_bytes:
            return
        key = (name, body)
        old = self._data.pop(key, None)
        if old is not None:
            self.size -= len(old) + len(body)
        self._data[key] = value
        self.size += len(value) + len(body)
        while self.size > self.max_bytes and self._data:
            (_, k_body), v = self._data.popitem(last=False)
            self.size -= len(v) + len(k_body)

    def __len__(self) -> int:
        return len(self._data)
