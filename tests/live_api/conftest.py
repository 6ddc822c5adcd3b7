"""The integration suite's `client` fixture (both stores) for the live-session API, and a
real API server (embedded store, payments off) for the websocket tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import client  # noqa: F401
from tests.servers import ApiServer, settings_env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    env = settings_env(None, tmp_path / "var") | {"REDCART_PAYMENTS": "off"}
    api = ApiServer(env, tmp_path / "api.log")
    try:
        yield api.wait_ready()
    finally:
        api.stop()
