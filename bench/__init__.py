"""Benchmarks (not tests): each prints figures and a baseline measured in the same run."""

from __future__ import annotations

from collections.abc import Callable


def _orders(**kwargs: object) -> dict:
    from bench.orders import run

    return run(**kwargs)  # type: ignore[arg-type]


def _fanout(**kwargs: object) -> dict:
    from bench.fanout import run

    return run(**kwargs)  # type: ignore[arg-type]


def _flash_deal(**kwargs: object) -> dict:
    from bench.flash_deal import run

    return run(**kwargs)  # type: ignore[arg-type]


def _projections(**kwargs: object) -> dict:
    from bench.projections import run

    return run(**kwargs)  # type: ignore[arg-type]


def _reads(**kwargs: object) -> dict:
    from bench.reads import run

    return run(**kwargs)  # type: ignore[arg-type]


def _deal_writer(**kwargs: object) -> dict:
    from bench.deal_writer import run

    return run(**kwargs)  # type: ignore[arg-type]


def _event_append(**kwargs: object) -> dict:
    from bench.event_append import run

    return run(**kwargs)  # type: ignore[arg-type]


def _replay(**kwargs: object) -> dict:
    from bench.replay import run

    return run(**kwargs)  # type: ignore[arg-type]


REGISTRY: dict[str, Callable[..., dict]] = {
    "orders": _orders,
    "fanout": _fanout,
    "flash-deal": _flash_deal,
    "deal-writer": _deal_writer,
    "event-append": _event_append,
    "replay": _replay,
    "projections": _projections,
    "reads": _reads,
}
