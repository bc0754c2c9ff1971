"""Requests that are the client's fault are logged as one line, rate limited.

aiohttp logs every malformed request (bad HTTP, a client gone mid-body) as ERROR with a
full traceback on the ``aiohttp.server`` logger, and much of the message is bytes the
client sent: anyone who reaches the port can fill the log. This filter turns those into
one WARNING line (type, a short escaped excerpt), at most ``per_minute`` a minute, and
counts the rest; real bugs (any other exception) keep their traceback.
"""

from __future__ import annotations

import logging
import time

from aiohttp import http_exceptions

CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    http_exceptions.HttpProcessingError, ConnectionError, TimeoutError,
)


def excerpt(text: str, limit: int = 80) -> str:
    """The first line, escaped to printable ASCII (no forged log lines), cut short."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return ascii(first[:limit])[1:-1]


class ClientErrorFilter(logging.Filter):
    def __init__(self, per_minute: int = 10) -> None:
        super().__init__()
        self.per_minute = per_minute
        self.total = 0  # client errors since start
        self.suppressed = 0  # of those, not logged
        self._window = 0.0
        self._in_window = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, CLIENT_ERRORS):
            return True
        self.total += 1
        now = time.monotonic()
        if now - self._window >= 60.0:
            self._window, self._in_window = now, 0
        if self._in_window >= self.per_minute:
            self.suppressed += 1
            return False
        self._in_window += 1
        detail = excerpt(getattr(exc, "message", "") or str(exc))
        head = excerpt(record.getMessage())
        record.msg = "%s: %s %s (%d client errors so far, %d not logged)"
        record.args = (head, type(exc).__name__, detail, self.total, self.suppressed)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_installed: list[ClientErrorFilter] = []


def install(logger_name: str = "aiohttp.server") -> ClientErrorFilter:
    """Add the filter once per process; returns it (its counters)."""
    if not _installed:
        _installed.append(ClientErrorFilter())
        logging.getLogger(logger_name).addFilter(_installed[0])
    return _installed[0]
