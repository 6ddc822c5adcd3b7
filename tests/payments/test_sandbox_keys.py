"""Processes starting together on one key folder all end up with the same, complete keys."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from payments.sandbox.keys import load_or_create_keys


def _load(folder: str, out: multiprocessing.Queue) -> None:
    try:
        keys = load_or_create_keys(folder, "wechatpay")
        out.put((keys.merchant_public_key, keys.gateway_public_key, keys.identity["apiv3_key"]))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(repr(exc))


def test_concurrent_first_starts_share_one_set_of_keys(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(str(tmp_path), out)) for _ in range(6)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    assert all(isinstance(r, tuple) for r in results), results
    assert len(set(results)) == 1
