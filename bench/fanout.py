"""`redcart bench fanout`: one live room, N viewers, reliable events at a steady rate.

What runs (everything on this machine, loopback only):
1. Load generators in their own processes (bench.fanout_client): ``REDCART_BENCH_LOADGENS``
   (default 2) processes of cheap drain viewers plus one process of ``probes`` (default 20)
   decoding viewers that time each message and check seq gaps.
2. The room hub served by uvicorn in a child process (bench.fanout_server.hub_app: a minimal
   Litestar app with RoomHub + room_routes, no database), all viewers connected to one room,
   then ``rate`` events/s (default 10) published by a task inside the server for
   3 s warm-up + ``seconds`` measured + 2 s tail.
3. The baseline in the same run, with the same viewers and schedule: a plain ``websockets``
   server calling ``websockets.broadcast`` per event (bench.fanout_server.baseline).

Figures: delivered frames/s and messages/s (drain counters over the measured window, all
viewers), p50/p90/p99/max latency from scheduled publish to probe receive, seq gaps, viewers
closed (4008 = slow consumer) and CPU per process. Goal (issue): 5,000 viewers, p99 ≤ 250 ms,
no gaps, ≥ 40,000 frames/s (checked on messages/s, see GOAL).

Knobs (environment; the CLI passes only ``seconds``, ``clients`` is not used):
REDCART_BENCH_VIEWERS, _RATE, _PROBES, _LOADGENS, _PAD (bytes of padding), _BASELINE=0 (skip
it), _PIN=1 (server on CPU 0, load generators on CPU 1), _SERVER_APP (another hub factory),
_SERVER (uvicorn, the default, or granian: the hub run by `redcart serve --server granian`),
_FANOUT_PG (the PostgreSQL URL of the rooms' LISTEN/NOTIFY backplane: by default
REDCART_DATABASE_URL or the local server, as a multi-process deployment runs; ``memory`` for the
embedded default's in-process backplane).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.fanout_procs import (
    CLK_TCK,
    HUB_SERVER,
    SERVER_APP,
    Gen,
    Server,
    ask_all,
    cpu_ticks,
    loadgens,
    machine_busy,
)
from bench.machine import python_loop_ms
from bench.orders import DEFAULT_SERVER, _children, _system_ticks, _terminate_on_sigterm
from redcart.serving import SERVERS

WARMUP_S, TAIL_S = 3.0, 2.0
# "frames/s" in the issue counts deliveries of one message (websockets.broadcast sends a frame per
# message); the hub may put several events in one frame when behind, so the goal is checked on
# messages_per_s and both figures are reported.
GOAL = {"viewers": 5000, "p99_ms": 250, "gaps": 0, "messages_per_s": 40_000}


@dataclass(frozen=True)
class Config:
    viewers: int
    rate: float
    probes: int
    loadgens: int
    pad: int
    seconds: float
    baseline: bool
    pin: bool


def _env(name: str, default: str) -> str:
    return os.environ.get(f"REDCART_BENCH_{name}") or default


def _on_postgres() -> bool:
    return os.environ.get("REDCART_BENCH_FANOUT_PG", "memory") != "memory"


def _backplane() -> str:
    """The hub's backplane, exported for the server process: PostgreSQL unless told
    ``memory``; an unreachable server is an error here rather than a silent in-memory run."""
    url = _env("FANOUT_PG", os.environ.get("REDCART_DATABASE_URL") or DEFAULT_SERVER)
    if url != "memory":
        import psycopg

        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            raise RuntimeError(
                f"fanout bench: PostgreSQL backplane {url} unreachable ({exc}); "
                "REDCART_BENCH_FANOUT_PG=memory runs the in-process backplane"
            ) from None
    os.environ["REDCART_BENCH_FANOUT_PG"] = url
    return url


def run(seconds: float = 10.0, clients: int = 64, progress: bool = True, **kw: Any) -> dict:
    """Measure hub and baseline; returns the figures (module docstring). Progress: stderr."""
    from rich.console import Console

    cfg = Config(
        viewers=int(kw.get("viewers") or _env("VIEWERS", "5000")),
        rate=float(kw.get("rate") or _env("RATE", "10")),
        probes=int(kw.get("probes") or _env("PROBES", "20")),
        loadgens=int(kw.get("loadgens") or _env("LOADGENS", "2")),
        pad=int(kw.get("pad") or _env("PAD", "0")),
        seconds=seconds,
        baseline=_env("BASELINE", "1") != "0",
        pin=_env("PIN", "0") == "1",
    )
    if cfg.viewers <= cfg.probes or cfg.rate <= 0 or seconds <= 0:
        raise ValueError("need viewers > probes, rate > 0 and seconds > 0")
    if HUB_SERVER not in SERVERS:
        raise ValueError(f"REDCART_BENCH_SERVER: one of {', '.join(SERVERS)}")
    _backplane()
    console = Console(stderr=True, quiet=not progress, highlight=False, soft_wrap=True)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    started, load = time.time(), [round(x, 2) for x in os.getloadavg()]
    with _terminate_on_sigterm(), loadgens(cfg.loadgens, cfg.pin) as gens:
        hub = _phase("hub", cfg, gens, console)
        base = _phase("baseline", cfg, gens, console) if cfg.baseline else None
    figures = _figures(cfg, hub, base, started, load)
    if progress:
        b = (
            f" vs baseline {base['messages_per_s']:,.0f} messages/s, p99 {base['p99_ms']} ms"
            if base
            else ""
        )
        console.print(
            f"[bold]hub: {hub['messages_per_s']:,.0f} messages/s[/] "
            f"({hub['frames_per_s']:,.0f} frames/s), p99 {hub['p99_ms']} ms, "
            f"gaps {hub['gaps']}, closed {hub['closed']}{b}"
        )
    return figures


# -- one phase ---------------------------------------------------------------------------------


def _phase(kind: str, cfg: Config, gens: list[Gen], console: Any) -> dict[str, Any]:
    import tempfile

    drains, probe_gen = gens[:-1], gens[-1]
    path = "/live/bench/ws" if kind == "hub" else "/ws"
    with tempfile.TemporaryFile() as log:
        server = Server(kind, log)
        try:
            server.wait_ready()
            if cfg.pin:
                os.sched_setaffinity(server.proc.pid, {0})
            return _measure(kind, cfg, server, drains, probe_gen, path, console)
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise
        finally:
            with contextlib.suppress(Exception):
                ask_all(gens, "disconnect")
            server.stop()


def _measure(
    kind: str, cfg: Config, server: Server, drains: list[Gen], probe_gen: Gen, path: str,
    console: Any,
) -> dict[str, Any]:  # fmt: skip
    n_drain = cfg.viewers - cfg.probes
    shares = [n_drain // len(drains) + (i < n_drain % len(drains)) for i in range(len(drains))]
    t, ok = time.perf_counter(), 0
    for r in range(cfg.probes):  # probes spread evenly through the room's connection order
        for gen, share in zip(drains, shares, strict=True):
            chunk = share // cfg.probes + (r < share % cfg.probes)
            gen.send("connect", "127.0.0.1", server.port, path, chunk, False)
        ok += sum(gen.recv(300)["ok"] for gen in drains)
        probe_gen.send("connect", "127.0.0.1", server.port, path, 1, True)
        ok += probe_gen.recv(300)["ok"]
    connect_s = time.perf_counter() - t
    console.print(f"[dim]{kind}: {ok}/{cfg.viewers} viewers connected in {connect_s:.1f}s[/]")
    count = math.ceil(cfg.rate * (WARMUP_S + cfg.seconds + TAIL_S))
    server.get(f"/__bench/feed?rate={cfg.rate}&count={count}&pad={cfg.pad}")
    time.sleep(WARMUP_S)
    # granian serves from a worker process, a child of the one started
    procs = [server.proc.pid, *_children(server.proc.pid), *(g.proc.pid for g in drains)]
    procs.append(probe_gen.proc.pid)
    n_server = len(procs) - len(drains) - 1
    cpu0, busy0, t0 = [cpu_ticks(p) for p in procs], machine_busy(), time.time()
    steal0 = _system_ticks()[2]
    marks0 = ask_all([*drains, probe_gen], "mark")
    status0 = server.get("/__bench/status")
    time.sleep(cfg.seconds)
    marks1 = ask_all([*drains, probe_gen], "mark")
    cpu1, busy1, t1 = [cpu_ticks(p) for p in procs], machine_busy(), time.time()
    steal1 = _system_ticks()[2]
    status = server.get("/__bench/status")
    events_per_s = (status["published"] - status0["published"]) / (status["time"] - status0["time"])
    deadline = time.monotonic() + TAIL_S + 30
    while status["feeding"] and time.monotonic() < deadline:
        time.sleep(0.2)
        status = server.get("/__bench/status")
    time.sleep(1.0)  # the last events reach the probes
    status = server.get("/__bench/status")
    probe_gen.send("probes")
    probes = probe_gen.recv()
    window = t1 - t0
    delta = {k: sum(m1[k] - m0[k] for m0, m1 in zip(marks0, marks1, strict=True))
             for k in ("frames", "messages", "bytes")}  # fmt: skip
    lat = sorted(ms for t_ns, ms in probes["samples"] if t0 * 1e9 <= t_ns <= t1 * 1e9)
    per_second: dict[int, list[float]] = {}  # when in the window the latency was high
    for t_ns, ms in probes["samples"]:
        if t0 * 1e9 <= t_ns <= t1 * 1e9:
            per_second.setdefault(int(t_ns / 1e9 - t0), []).append(ms)
    codes: dict[str, int] = {}
    for mark in marks1:
        for code, n in mark["codes"].items():
            codes[str(code)] = codes.get(str(code), 0) + n
    for code in probes["closed"]:
        codes[str(code)] = codes.get(str(code), 0) + 1
    # probes decode frames themselves: count their messages as frames (upper bound, few)
    probe_msgs = marks1[-1]["probe_received"] - marks0[-1]["probe_received"]
    cores = lambda ticks: round(ticks / CLK_TCK / window, 2)  # noqa: E731
    result = {
        "connected": ok,
        "connect_s": round(connect_s, 1),
        "events_per_s": round(events_per_s, 1),
        "frames_per_s": round((delta["frames"] + probe_msgs) / window),
        "messages_per_s": round((delta["messages"] + probe_msgs) / window),
        "expected_messages_per_s": round(cfg.viewers * cfg.rate),
        "drained_mb_per_s": round(delta["bytes"] / window / 1e6, 2),
        "p50_ms": _pct(lat, 50),
        "p90_ms": _pct(lat, 90),
        "p99_ms": _pct(lat, 99),
        "max_ms": round(lat[-1], 1) if lat else None,
        "latency_samples": len(lat),
        "max_ms_by_second": [round(max(v)) for _, v in sorted(per_second.items())],
        "gaps": probes["gaps"],
        "out_of_order": probes["out_of_order"],
        "closed": sum(codes.values()),
        "closed_slow": codes.get("4008", 0),
        "close_codes": codes,
        "viewers_at_end": status.get("viewers"),
        "fanout_p50_ms": status["fanout_p50_ms"],
        "fanout_max_ms": status["fanout_max_ms"],
        "publisher_late_p99_ms": status["late_p99_ms"],
        "publisher_late_max_ms": status["late_max_ms"],
        "cpu_cores": {
            "server": cores(sum(cpu1[:n_server]) - sum(cpu0[:n_server])),
            "load_generators": cores(sum(cpu1[n_server:]) - sum(cpu0[n_server:])),
            "machine_busy": cores(busy1 - busy0),
            "steal": cores(steal1 - steal0),  # taken back by the hypervisor (not in machine_busy)
            "other": cores(max(0, busy1 - busy0 - sum(cpu1) + sum(cpu0))),
        },
    }
    if kind == "hub":
        result["dropped_frames"] = status.get("dropped_frames")
        result["direct_writes"] = status.get("direct_writes")
    console.print(f"[dim]{kind}: {json.dumps(result)}[/]")
    return result


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 1)


def _figures(
    cfg: Config, hub: dict, base: dict | None, started: float, load: list[float]
) -> dict[str, Any]:
    met = (
        hub["connected"] >= GOAL["viewers"]
        and hub["p99_ms"] is not None
        and hub["p99_ms"] <= GOAL["p99_ms"]
        and hub["gaps"] == 0
        and hub["closed"] == 0
        and hub["messages_per_s"] >= GOAL["messages_per_s"]
    )
    ratio = None
    if base and base["messages_per_s"]:
        ratio = {
            "messages_per_s": round(hub["messages_per_s"] / base["messages_per_s"], 2),
            "p99": round(base["p99_ms"] / hub["p99_ms"], 2) if hub["p99_ms"] else None,
        }
    return {
        "benchmark": "fanout",
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "viewers": cfg.viewers,
        "probes": cfg.probes,
        "events_per_s": cfg.rate,
        "seconds": cfg.seconds,
        "frames_per_s": hub["frames_per_s"],
        "messages_per_s": hub["messages_per_s"],
        "p50_ms": hub["p50_ms"],
        "p99_ms": hub["p99_ms"],
        "max_ms": hub["max_ms"],
        "gaps": hub["gaps"],
        "closed_slow": hub["closed_slow"],
        "hub": hub,
        "baseline": base,
        "ratio_to_baseline": ratio,
        "goal": GOAL,
        "goal_met": met,
        "machine": {
            "nproc": os.cpu_count(),
            "loadavg_at_start": load,
            "python": sys.version.split()[0],
            "pinned": cfg.pin,
            "python_loop_ms": python_loop_ms(),  # the spell: lower is a faster machine
            "server": HUB_SERVER,
            "server_app": SERVER_APP,
            "backplane": "postgresql" if _on_postgres() else "memory",
            "loadgens": cfg.loadgens,
        },
    }
