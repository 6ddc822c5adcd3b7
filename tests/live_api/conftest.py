"""The integration suite's `client` fixture (both stores) for the live-session API."""

from tests.integration.conftest import client  # noqa: F401
