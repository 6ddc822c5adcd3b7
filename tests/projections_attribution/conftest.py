"""Fixtures: the API client of the integration tests, and a bare log to project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import client  # noqa: F401 (a fixture, by name)
from tests.projections_attribution.world import World


@pytest.fixture
def world(store_url: str | None, tmp_path: Path) -> Iterator[World]:
    w = World(store_url, tmp_path / "var")
    yield w
    w.close()
