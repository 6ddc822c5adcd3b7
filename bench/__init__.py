"""Benchmarks (not tests): each prints figures and a baseline measured in the same run."""

from __future__ import annotations

from collections.abc import Callable


def _orders(**kwargs: object) -> dict:
    from bench.orders import run

    return run(**kwargs)  # type: ignore[arg-type]


REGISTRY: dict[str, Callable[..., dict]] = {"orders": _orders}
