"""The `market` command, run as a newcomer and an operator would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from market.app import create_app
from market.cli import app as cli
from market.config import Settings, get_settings
from market.db import make_engine
from market.demo import DEMO_PASSWORD
from market.listings.models import Demand, ListingStatus, Result
from market.organizations.uscc import make_uscc
from market.outbox.models import OutboxEvent

runner = CliRunner()
STRONG_SECRET = "q8Zr3vN1xY0pLk7HwT2sJ9dF4gB6mC5a"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh embedded setup: SQLite in tmp_path, as `make run` uses ./var."""
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MARKET_DATABASE_URL", "")
    monkeypatch.setenv("MARKET_ENVIRONMENT", "development")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_demo_load_gives_every_role_a_working_account(data_dir: Path) -> None:
    outcome = runner.invoke(cli, ["demo", "load"])
    assert outcome.exit_code == 0, outcome.output
    assert "1000 results" in outcome.output

    settings = Settings(data_dir=data_dir)
    engine = make_engine(settings.effective_database_url)
    with Session(engine) as session:
        published = (
            select(func.count()).select_from(Result).where(Result.status == ListingStatus.PUBLISHED)
        )
        assert session.exec(published).one() == 1000
        assert session.exec(select(func.count()).select_from(Demand)).one() >= 10
        # every published listing is queued for the search index
        assert session.exec(select(func.count()).select_from(OutboxEvent)).one() >= 1010

    with TestClient(create_app(settings, engine)) as client:
        for email, role in [
            ("reviewer", "bureau_staff"),
            ("broker", "broker"),
            ("materials", "org_admin"),
            ("magnet-engineer", "member"),
        ]:
            login = client.post(
                "/auth/login",
                json={"email": f"{email}@demo.techmarket.cn", "password": DEMO_PASSWORD},
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert client.get("/me", headers=headers).json()["role"] == role

    again = runner.invoke(cli, ["demo", "load"])
    assert "already has data" in again.output


def test_db_upgrade_downgrade_current(data_dir: Path) -> None:
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    current = runner.invoke(cli, ["db", "current"])
    assert current.exit_code == 0 and current.output.strip() != "base (empty)"
    assert runner.invoke(cli, ["db", "downgrade", "base"]).exit_code == 0
    assert runner.invoke(cli, ["db", "current"]).output.strip() == "base (empty)"


def test_create_admin(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner.invoke(cli, ["db", "upgrade"])
    monkeypatch.setenv("MARKET_ADMIN_PASSWORD", "a strong admin password 1")
    code = make_uscc("11", "330200", "MB000001")
    outcome = runner.invoke(
        cli, ["create-admin", "--email", "root@kjj.example.cn", "--credit-code", code]
    )
    assert outcome.exit_code == 0, outcome.output
    # a second account joins the existing bureau without its code
    staff = runner.invoke(cli, ["create-admin", "--email", "staff@kjj.example.cn", "--staff"])
    assert staff.exit_code == 0, staff.output

    monkeypatch.setenv("MARKET_ADMIN_PASSWORD", "short")
    weak = runner.invoke(cli, ["create-admin", "--email", "weak@kjj.example.cn"])
    assert weak.exit_code == 2
    assert "password" in weak.output


def test_create_admin_needs_the_bureau_code_first_time(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner.invoke(cli, ["db", "upgrade"])
    monkeypatch.setenv("MARKET_ADMIN_PASSWORD", "a strong admin password 1")
    outcome = runner.invoke(cli, ["create-admin", "--email", "root@kjj.example.cn"])
    assert outcome.exit_code == 2
    assert "--credit-code" in outcome.output


def test_production_refuses_weak_secret_at_the_command_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKET_ENVIRONMENT", "production")
    monkeypatch.setenv("MARKET_JWT_SECRET", "secret")
    get_settings.cache_clear()
    outcome = runner.invoke(cli, ["db", "current"])
    assert outcome.exit_code != 0
    assert "MARKET_JWT_SECRET" in str(outcome.exception)


def test_serve_refuses_a_public_interface_with_the_development_secret(data_dir: Path) -> None:
    # The default environment (development) with the secret that ships in the code.
    outcome = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8999"])  # noqa: S104

    assert outcome.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in outcome.output
    assert not (data_dir / "market.db").exists()  # stopped before touching anything


def test_demo_load_is_refused_in_production(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKET_ENVIRONMENT", "production")
    monkeypatch.setenv("MARKET_JWT_SECRET", STRONG_SECRET)
    monkeypatch.setenv("MARKET_LOAD_DEMO_DATA", "true")
    get_settings.cache_clear()

    outcome = runner.invoke(cli, ["demo", "load"])

    assert outcome.exit_code == 2
    assert "never loaded in production" in outcome.output


def test_production_serve_over_http_loads_no_demo_data_and_names_no_server(
    tmp_path: Path,
) -> None:
    """The real `market serve` (uvicorn) on an empty database, with
    MARKET_LOAD_DEMO_DATA=true: the demo admin does not exist, and neither the headers
    nor /health tell an anonymous caller what runs here."""
    port = _free_port()
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("MARKET_")},
        "MARKET_ENVIRONMENT": "production",
        "MARKET_JWT_SECRET": STRONG_SECRET,
        "MARKET_LOAD_DEMO_DATA": "true",
        "MARKET_DATA_DIR": str(tmp_path),
        "MARKET_RUN_WORKER_IN_PROCESS": "false",
    }
    server = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
        [sys.executable, "-m", "market.cli", "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        health = _wait_for(f"{base}/health", server)
        login = httpx.post(
            f"{base}/auth/login",
            json={"email": "admin@demo.techmarket.cn", "password": DEMO_PASSWORD},
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert "server" not in health.headers
    assert health.headers["x-content-type-options"] == "nosniff"
    assert login.status_code == 401


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(url: str, server: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            assert server.stderr is not None
            raise AssertionError(f"market serve exited: {server.stderr.read().decode()}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within 60 s")
