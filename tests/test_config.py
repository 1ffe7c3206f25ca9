"""Outside development the service refuses weak secrets; in development it starts."""

from __future__ import annotations

import pytest

from market.app import create_app
from market.config import DEVELOPMENT_JWT_SECRET, ConfigurationError, Settings
from market.db import make_engine


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "secret",
        "changeme",
        DEVELOPMENT_JWT_SECRET,
        "short-but-random-9f8e",
        "a" * 64,
        "ab" * 32,
    ],
)
def test_production_refuses_weak_jwt_secrets(secret: str) -> None:
    settings = Settings(environment="production", jwt_secret=secret)
    with pytest.raises(ConfigurationError, match="MARKET_JWT_SECRET"):
        create_app(settings, make_engine("sqlite://"))


def test_production_accepts_a_strong_secret() -> None:
    settings = Settings(environment="production", jwt_secret="q8Zr3vN1xY0pLk7HwT2sJ9dF4gB6mC5a")
    assert create_app(settings, make_engine("sqlite://")).title == "TechMarket API"


def test_development_starts_with_the_built_in_secret() -> None:
    assert Settings(environment="development").jwt_secret == DEVELOPMENT_JWT_SECRET
    create_app(Settings(environment="development"), make_engine("sqlite://"))


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKET_ACCESS_TOKEN_MINUTES", "30")
    monkeypatch.setenv("MARKET_SEARCH_BACKEND", "meilisearch")
    settings = Settings()
    assert settings.access_token_minutes == 30
    assert settings.search_backend == "meilisearch"


STRONG_SECRET = "q8Zr3vN1xY0pLk7HwT2sJ9dF4gB6mC5a"


ANY_INTERFACE = "0.0.0.0"  # noqa: S104 - what the check must refuse


@pytest.mark.parametrize("environment", ["development", "test", "production"])
@pytest.mark.parametrize("host", [ANY_INTERFACE, "::", "192.168.1.20", "techmarket.example.cn"])
def test_the_development_secret_never_listens_beyond_this_machine(
    environment: str, host: str
) -> None:
    settings = Settings(environment=environment, jwt_secret=DEVELOPMENT_JWT_SECRET)
    with pytest.raises(ConfigurationError, match=f"refusing to listen on {host}"):
        settings.check_bind_safety(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_the_development_secret_serves_on_loopback(host: str) -> None:
    Settings(environment="development").check_bind_safety(host)


def test_a_strong_secret_may_listen_anywhere() -> None:
    Settings(environment="development", jwt_secret=STRONG_SECRET).check_bind_safety(ANY_INTERFACE)


def test_production_never_loads_demo_data_whatever_the_setting_says() -> None:
    production = Settings(environment="production", jwt_secret=STRONG_SECRET, load_demo_data=True)
    assert not production.demo_data_allowed
    assert Settings(environment="development", load_demo_data=True).demo_data_allowed
    assert not Settings(environment="development", load_demo_data=False).demo_data_allowed
