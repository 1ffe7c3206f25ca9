"""The ASGI entry point for uvicorn and other servers: `market.asgi:app`."""

from market.app import create_app

app = create_app()
