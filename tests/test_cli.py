"""The `market` command, run as a newcomer and an operator would."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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
        published = select(func.count()).select_from(Result).where(
            Result.status == ListingStatus.PUBLISHED
        )
        assert session.exec(published).one() == 1000
        assert session.exec(select(func.count()).select_from(Demand)).one() >= 10
        # every published listing is queued for the search index
        assert session.exec(select(func.count()).select_from(OutboxEvent)).one() >= 1010

    with TestClient(create_app(settings, engine)) as client:
        for email, role in [("reviewer", "bureau_staff"), ("broker", "broker"),
                            ("materials", "org_admin"), ("magnet-engineer", "member")]:
            login = client.post("/auth/login", json={
                "email": f"{email}@demo.techmarket.cn", "password": DEMO_PASSWORD})
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
    outcome = runner.invoke(cli, ["create-admin", "--email", "root@kjj.example.cn",
                                  "--credit-code", code])
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
