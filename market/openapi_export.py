"""openapi.yaml, generated from the app: `market openapi` writes it, a test checks it."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from market.app import create_app
from market.config import Settings
from market.db import make_engine

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.yaml"


def render_openapi() -> str:
    # The schema does not depend on the database or secrets; an unconnected engine and
    # a throwaway secret build the same document on any machine.
    settings = Settings(
        environment="test",
        jwt_secret=secrets.token_urlsafe(48),
        load_demo_data=False,
        run_worker_in_process=False,
    )
    app = create_app(settings, make_engine("sqlite://"))
    return yaml.safe_dump(app.openapi(), allow_unicode=True, sort_keys=False, width=100)
