"""ASGI entrypoint for uvicorn: `uvicorn redcart.asgi:app` (settings from the environment)."""

from redcart.app import create_app

app = create_app()
