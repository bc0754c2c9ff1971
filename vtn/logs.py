"""Process logging for ``vtn serve``: ``[logging] level`` and ``format`` (text | json).

The standard library's ``logging`` with a small JSON formatter, not structlog: every
module already logs through ``logging.getLogger(__name__)`` (and so do aiohttp,
APScheduler and PyMongo), so one formatter covers all of them without a second logging
API or a new dependency. Fields a record carries in ``extra=`` (``ven_name``,
``ven_id``, ``event``, ...) become JSON keys, or ``key=value`` pairs in text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from vtn.config import LoggingConfig

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the extras, exc (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(extras(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    """The usual line, with the extras appended as key=value."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        more = extras(record)
        if more:
            line += " " + " ".join(f"{k}={v}" for k, v in more.items())
        return line


def setup_logging(cfg: LoggingConfig, verbose: bool = False) -> None:
    """Replace the root handler; ``verbose`` (vtn -v) forces DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if cfg.format == "json" else TextFormatter())
    level = logging.DEBUG if verbose else getattr(logging, cfg.level.upper())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)
