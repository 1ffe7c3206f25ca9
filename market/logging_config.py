"""Logging of every `market` process, configured here and nowhere else.

`market serve` hands `dict_config(settings)` to uvicorn, which applies it in each of its
server processes (its own `uvicorn.*` loggers included); `market worker` and the other
commands apply the same configuration with `configure(settings)`. All records go to
stderr through the root logger, at `MARKET_LOG_LEVEL`, as text for people or, with
`MARKET_LOG_FORMAT=json` (the production default), one JSON object per line with the
keys `time`, `level`, `logger` and `message` (plus `exc_info` for an exception).
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS

from market.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
JSON_FIELD_NAMES = {"levelname": "level", "name": "logger"}
# Record attributes left out of the JSON: logging's own, and uvicorn's copy of its message
# with terminal colour codes.
JSON_LEFT_OUT = [*RESERVED_ATTRS, "color_message"]
# uvicorn configures these with handlers of their own; here they only pass records up.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is when a record comes (as logging's last-resort
    handler does), so a handler made before a test runner swaps stderr still works."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def dict_config(settings: Settings) -> dict[str, Any]:
    """The `logging.config.dictConfig` schema for these settings."""
    formatters: dict[str, dict[str, Any]] = {
        "text": {"format": TEXT_FORMAT},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": JSON_FIELDS,
            "rename_fields": JSON_FIELD_NAMES,
            "reserved_attrs": JSON_LEFT_OUT,
            "timestamp": "time",  # ISO 8601 in UTC, as collectors expect
            "json_ensure_ascii": False,  # Chinese titles stay readable
        },
    }
    return {
        "version": 1,
        # Loggers made at import time (every module's `getLogger`) must keep working.
        "disable_existing_loggers": False,
        "formatters": {"chosen": formatters[settings.effective_log_format]},
        "handlers": {"stderr": {"()": StderrHandler, "formatter": "chosen"}},
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            **{
                name: {"level": settings.log_level, "handlers": [], "propagate": True}
                for name in UVICORN_LOGGERS
            },
            # Alembic narrates every connection at INFO ("Context impl SQLiteImpl."), and
            # `market db current` prints its answer for scripts to read: warnings only.
            "alembic": {"level": "WARNING"},
        },
    }


def configure(settings: Settings) -> None:
    """Apply the configuration to this process."""
    logging.config.dictConfig(dict_config(settings))
