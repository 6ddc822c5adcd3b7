"""The load phase of `redcart bench flash-deal`: generator processes, the countdown, CPU and
writer snapshots around the measured window, and what the generators saw."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.flash_deal_seed import Seed

TIMEOUT_S = 10.0  # an attempt unanswered this long after its due time is an error
BUYER_NAME = "王小明"


def drive(
    api: Any,
    seed: Seed,
    deals: list[dict],
    *,
    rate: float,
    seconds: float,
    warmup: float,
    pause: float,
    generators: int,
    prewarm: int,
    tmp: Path,
    console: Any,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """Start the generators, wait for the countdown, run, and collect what they saw."""
    from bench.orders import (
        ADDRESS,
        REPO,
        _children,
        _die_with_parent,
        _postmaster_pid,
        _snapshot,
        _ticks,
    )

    phases = []
    if warmup > 0:
        phases.append({"name": "warmup", "deal_id": deals[0]["id"], "seconds": warmup})
        phases[-1]["record"] = False
        if pause > 0:  # nothing sent: the warm-up's background work is done before the sale
            phases.append({"name": "pause", "deal_id": None, "seconds": pause, "record": False})
    phases.append({"name": "main", "deal_id": deals[-1]["id"], "seconds": seconds, "record": True})
    lines: queue.Queue = queue.Queue()
    procs: list[subprocess.Popen] = []
    logs = []

    def read(g: int, stream: Any) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                lines.put((g, json.loads(line)))

    try:
        for g in range(generators):
            cfg = {
                "host": "127.0.0.1", "port": api.port, "index": g, "generators": generators,
                "rate": rate, "seed": 1000 + g, "timeout": TIMEOUT_S, "phases": phases,
                "prewarm": math.ceil(prewarm / generators), "name": BUYER_NAME,
                "max_connections": math.ceil(max(4 * prewarm, 512) / generators),
                "address": ADDRESS, "buyers": [[token, rid] for _, token, rid in seed.buyers],
                "out": str(tmp / f"gen{g}.out.json"),
            }  # fmt: skip
            (tmp / f"gen{g}.json").write_text(json.dumps(cfg, ensure_ascii=False))
            logs.append((tmp / f"gen{g}.log").open("wb"))
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.flash_deal_load", str(tmp / f"gen{g}.json")],
                cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logs[-1],
                text=True, start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
            procs.append(proc)
            threading.Thread(target=read, args=(g, proc.stdout), daemon=True).start()
        ready: set[int] = set()
        deadline = time.monotonic() + 60
        while len(ready) < generators:
            try:
                g, msg = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"load generators not ready:\n{_tails(tmp, generators)}"
                ) from None
            if msg.get("ready"):
                ready.add(g)
        opens = max(datetime.fromisoformat(d["opens_at"]) for d in deals)
        wait = (opens - datetime.now(UTC)).total_seconds() + 0.3
        if wait > 0:
            console.print(f"  countdown: claims open in {wait:.1f}s")
            time.sleep(wait)
        start = time.monotonic() + 1.0  # time to open the pre-warmed connections
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"go {start!r}\n")
            proc.stdin.flush()
        main0 = start + warmup + (pause if warmup > 0 else 0.0)
        main1 = main0 + seconds
        postmaster = _postmaster_pid(api.db_url)
        gen_pids = [p.pid for p in procs]
        workers = list(getattr(api, "worker_pids", []))

        def side_ticks() -> dict[str, int]:
            """CPU ticks of the generators, and of the workers (read models, claims' orders)
            with their children (a supervisor may run one process per read model)."""
            found, todo = [], list(workers)
            while todo:
                pid = todo.pop()
                found.append(pid)
                todo.extend(_children(pid))
            return {
                "load_generators": sum(_ticks(f"/proc/{pid}/stat") for pid in gen_pids),
                "workers": sum(_ticks(f"/proc/{pid}/stat") for pid in found),
            }

        _relay(lines, console, main0, start)
        cpu0, side0 = _snapshot(api.pid, postmaster), side_ticks()
        # An overloaded server answers late: ask in the background, so the window's closing
        # snapshot is taken on time.
        marks: dict[str, dict] = {}

        def mark() -> None:
            marks["stats0"] = _get(api, "/__bench/stats")
            if profile_dir:
                _get(api, "/__bench/profile/mark", timeout=30)

        marker = threading.Thread(target=mark, name="bench-mark", daemon=True)
        marker.start()
        _relay(lines, console, main1, start)
        cpu1, side1 = _snapshot(api.pid, postmaster), side_ticks()
        marker.join(timeout=30)
        stats0 = marks.get("stats0", {})
        stats1 = _get(api, "/__bench/stats?lag=1")
        profile = None
        if profile_dir:
            profile = _get(api, f"/__bench/profile/dump?dir={profile_dir}", timeout=60)
        for proc in procs:
            left = main1 + TIMEOUT_S + 30 - time.monotonic()
            if proc.wait(timeout=max(1.0, left)) != 0:
                raise RuntimeError(f"a load generator failed:\n{_tails(tmp, generators)}")
        if not stats1:  # an overloaded server did not answer in time: take it after the drain
            stats1 = _get(api, "/__bench/stats?lag=1")
            stats1["taken_after_drain"] = True
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    results = [json.loads((tmp / f"gen{g}.out.json").read_text()) for g in range(generators)]
    wall = cpu1.at - cpu0.at
    tick = os.sysconf("SC_CLK_TCK")
    side_cores = {k: max(0, side1[k] - side0[k]) / tick / wall for k in side1}
    warm: dict[str, int] = {}
    for r in results:
        for k, n in r["summaries"].get("warmup", {}).items():
            warm[k] = warm.get(k, 0) + n
    return {
        "rows": [row for r in results for row in r["rows"]["main"]],
        "generators": [
            {k: v for k, v in r.items() if k not in ("rows", "summaries")} for r in results
        ],
        "warmup": warm,
        "cpu": (cpu0, cpu1, {k: round(v, 2) for k, v in side_cores.items()}),
        "stats": (stats0, stats1),
        "profile": profile,
        "phase_start": main0,  # time.monotonic() of the measured phase's due time 0
    }


def _relay(lines: queue.Queue, console: Any, until: float, start: float) -> None:
    """Pass progress on (summed over generators) until `until` (time.monotonic())."""
    latest: dict[int, dict] = {}
    last = None
    while (left := until - time.monotonic()) > 0:
        try:
            g, msg = lines.get(timeout=left)
        except queue.Empty:
            return
        if "progress" not in msg:
            continue
        latest[g] = msg["progress"]
        if g != 0:
            continue
        done = sum(p["done"] for p in latest.values())
        now = time.monotonic()
        if last is not None:
            console.print(
                f"  {now - start:5.1f}s  {(done - last[1]) / (now - last[0]):7.0f} answered/s  "
                f"in flight {sum(p['in_flight'] for p in latest.values()):4d}  "
                f"connections {sum(p['open'] for p in latest.values())}"
            )
        last = (now, done)


def _get(api: Any, path: str, timeout: float = 15.0) -> dict:
    try:
        stats, _, query = path.partition("?")
        if stats == "/__bench/stats" and getattr(api, "stats_port", None):
            url = f"http://127.0.0.1:{api.stats_port}/?{query}"  # answered off the event loop
            with urllib.request.urlopen(url, timeout=timeout) as answer:
                return json.loads(answer.read())
        return api.get_json(path, timeout=timeout)
    except (OSError, ValueError):
        return {}


def _tails(tmp: Path, generators: int) -> str:
    return "\n".join(
        (tmp / f"gen{g}.log").read_text(errors="replace")[-2000:] for g in range(generators)
    )
