"""A `client` for the live-session API on both stores, whose server clock a test can shift
(deals count down at least 10 s and claims lapse minutes later, so scenarios need no real
waiting), and a real API server (embedded store, payments off) for the websocket tests."""

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from redcart.app import create_app
from redcart.serving import SERVERS
from redcart.wiring import build_commerce, migrate
from tests.conftest import make_settings
from tests.servers import ApiServer, settings_env


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiServer]:
    """On each HTTP server `redcart serve` offers: rooms must work on both."""
    env = settings_env(None, tmp_path / "var") | {"REDCART_PAYMENTS": "off"}
    api = ApiServer(env, tmp_path / "api.log", server=request.param)
    try:
        yield api.wait_ready()
    finally:
        api.stop()


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(store_url: str | None, tmp_path: Path, clock: Clock) -> Iterator[TestClient]:
    settings = make_settings(store_url, tmp_path / "var")
    migrate(settings)
    runtime = build_commerce(settings)
    runtime.cfg = dataclasses.replace(runtime.cfg, clock=clock)
    app = create_app(settings, runtime, env={"REDCART_PAYMENTS": "off"})
    with TestClient(app=app) as test_client:
        yield test_client
