"""Logging of the `market` processes: run as an operator runs them, in their own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from market import migrate

MARKET = Path(sys.executable).with_name("market")
# A worker that does not answer its signal is killed after this long; the test then fails.
WORKER_DEADLINE_SECONDS = 60
STOP_MESSAGE = "stopping after the current batch"


def _run_worker_until_stopped(data_dir: Path, **environment: str) -> str:
    """Start `market worker` on a migrated SQLite database, stop it with SIGTERM once it
    says it runs, and return what it wrote to stderr (where the log goes)."""
    migrate.upgrade(f"sqlite:///{data_dir / 'market.db'}")
    env = {
        **os.environ,
        "MARKET_DATA_DIR": str(data_dir),
        "MARKET_DATABASE_URL": "",
        "MARKET_ENVIRONMENT": "development",
        "MARKET_SEARCH_BACKEND": "local",
        **environment,
    }
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(MARKET), "worker"],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    guard = threading.Timer(WORKER_DEADLINE_SECONDS, process.kill)
    guard.start()
    try:
        assert process.stdout is not None
        started = process.stdout.readline()
        assert "outbox worker" in started, started
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate()
    finally:
        guard.cancel()
    assert process.returncode == 0, err
    return err


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


def test_worker_messages_are_visible_as_text(data_dir: Path) -> None:
    err = _run_worker_until_stopped(data_dir, MARKET_LOG_FORMAT="text")
    (line,) = [line for line in err.splitlines() if STOP_MESSAGE in line]
    assert "INFO" in line and "market.discovery" in line


def test_json_format_writes_one_parseable_object_per_line(data_dir: Path) -> None:
    err = _run_worker_until_stopped(data_dir, MARKET_LOG_FORMAT="json")
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    (stop,) = [record for record in records if STOP_MESSAGE in record["message"]]
    assert stop["level"] == "INFO" and stop["logger"] == "market.discovery"
    assert "time" in stop


def test_production_logs_json_unless_told_otherwise(data_dir: Path) -> None:
    from market.config import Settings

    assert Settings(environment="production").effective_log_format == "json"
    assert Settings(environment="development").effective_log_format == "text"
    assert Settings(environment="production", log_format="text").effective_log_format == "text"


def test_level_below_the_message_hides_it(data_dir: Path) -> None:
    err = _run_worker_until_stopped(data_dir, MARKET_LOG_LEVEL="WARNING")
    assert STOP_MESSAGE not in err


def test_an_unknown_level_is_refused_by_name() -> None:
    from pydantic import ValidationError

    from market.config import Settings

    with pytest.raises(ValidationError, match="log_level"):
        Settings(log_level="LOUD")
