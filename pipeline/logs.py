"""Structured logs of the long-running processes: one `key=value` line per event, easy to grep and parse.

    ts=2027-03-01T08:00:00.012Z level=info logger=comms.scheduler event=run.started run=7 recipients=812

Library modules log ordinary messages (they come out as `msg="..."`); the daemon's own
events go through `log_event` so that every field is a key of its own.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_FIELDS = "comms_fields"
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+@#,")


def _value(value: Any) -> str:
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text if text and set(text) <= _BARE else json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        parts = [f"ts={moment.replace('+00:00', 'Z')}", f"level={record.levelname.lower()}"]
        parts.append(f"logger={record.name}")
        fields: dict[str, Any] | None = getattr(record, _FIELDS, None)
        if fields is None:
            parts.append(f"msg={_value(record.getMessage())}")
        else:
            parts.append(f"event={record.msg}")
            parts += [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
        if record.exc_info:
            # A traceback folded into one field keeps the one-line-per-event promise.
            parts.append(f"error={_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send every logger's records to STREAM (stderr) as key=value lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # APScheduler narrates every wake-up at INFO; its warnings and errors are what matter here.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log EVENT (dotted, e.g. run.started) with FIELDS as keys of its line."""
    logger.log(level, event, extra={_FIELDS: fields})


__all__ = ["KeyValueFormatter", "configure_logging", "log_event"]
