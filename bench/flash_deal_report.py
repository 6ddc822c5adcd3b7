"""Figures of `redcart bench flash-deal` from what the generators and the stores saw."""

from __future__ import annotations

from collections import Counter
from typing import Any

GOAL = {"attempts_per_s": 3000, "p99_ms": 150, "oversold": 0, "speedup": 20}

# A generator row: [status (0: no answer), due ms after the phase start, latency ms from the due
# time, send lag ms (due time to the write), problem code ("out_of_stock", "TimeoutError", ...)]
STATUS, DUE, LATENCY, LAG, CODE = range(5)


def _pcts(values: list[float]) -> dict[str, float | None]:
    from bench.httpload import percentile

    values = sorted(values)
    out = {f"p{q}": percentile(values, q) for q in (50, 90, 99)}
    out["max"] = values[-1] if values else None
    return {k: None if v is None else round(v, 2) for k, v in out.items()}


def _is_error(status: int) -> bool:
    return status == 0 or status >= 500


def _buckets(
    rows: list[list[Any]], width_ms: int, until_ms: float, lag: bool = False
) -> list[dict[str, Any]]:
    """Attempts grouped by when they were due: what they got, and how long they waited."""
    out = []
    for start in range(0, int(until_ms + width_ms - 1) // width_ms * width_ms, width_ms):
        these = [r for r in rows if start <= r[DUE] < start + width_ms]
        lat = _pcts([r[LATENCY] for r in these if r[STATUS] in (201, 409)])
        bucket = {
            "from_ms": start,
            "sent": len(these),
            "won": sum(1 for r in these if r[STATUS] == 201),
            "refused": sum(1 for r in these if r[STATUS] == 409),
            "errors": sum(1 for r in these if _is_error(r[STATUS])),
            "p50_ms": lat["p50"],
            "p99_ms": lat["p99"],
        }
        if lag:  # the load generator's own delay: a generator falling behind shows here
            bucket["max_send_lag_ms"] = round(max((r[LAG] for r in these), default=0.0), 1)
        out.append(bucket)
    return out


def _loop_lag(
    samples: list[list[float]],
    phase_start: float | None,
    seconds: float,
    sale_start: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """How late the API's event loop woke a task sleeping 10 ms, over the measured window, and
    the worst in each of the sale's first 100 ms steps (`loop_lag_max_ms`, added to them).
    With several API processes, the lag of the one that answered /__bench/stats."""
    if not samples or phase_start is None:
        return None
    window = [lag for at, lag in samples if 0 <= at - phase_start < seconds]
    for step in sale_start:  # the worst wait of any sleep that overlaps the step
        begin = phase_start + step["from_ms"] / 1000.0
        lags = [lag for at, lag in samples if at < begin + 0.1 and at + 0.01 + lag / 1e3 > begin]
        step["loop_lag_max_ms"] = round(max(lags), 1) if lags else None
    return _pcts(window)


def figures_of(
    settings: dict[str, Any],
    http: dict[str, Any],
    checks: dict[str, Any],
    warm_checks: dict[str, Any] | None,
    naive: dict[str, Any],
    machine: dict[str, Any],
    server_log: str,
) -> dict[str, Any]:
    from bench.orders import _cpu_breakdown

    seconds = settings["seconds"]
    rows = http["rows"]
    won = [r for r in rows if r[STATUS] == 201]
    refused = [r for r in rows if r[STATUS] == 409]
    errors = Counter(f"{r[STATUS]} {r[CODE]}".strip() for r in rows if _is_error(r[STATUS]))
    other = Counter(
        f"{r[STATUS]} {r[CODE]}".strip()
        for r in rows
        if r[STATUS] not in (201, 409) and not _is_error(r[STATUS])
    )
    handled = len(won) + len(refused)
    finished_s = max((r[DUE] + r[LATENCY] for r in rows), default=0.0) / 1000.0
    # Over the window the attempts arrive in, as load tools count completed requests per
    # second of the test: dividing by the last answer's time put a run that answered all of
    # its 30,000 attempts by 10.001 s at 2,999.7/s. Lateness is the latency figures' to judge.
    attempts_per_s = handled / seconds
    last_win_ms = max((r[DUE] + r[LATENCY] for r in won), default=None)
    sold_out = [r[DUE] + r[LATENCY] for r in refused if r[CODE] == "out_of_stock"]

    timeline = [{"s": b.pop("from_ms") // 1000, **b} for b in _buckets(rows, 1000, seconds * 1000)]
    # The sale's first two seconds in 100 ms steps: where a sale's p99 is made (winners queue
    # for the writer and the cap on claims in flight sheds the rest), hidden in whole seconds.
    sale_start = _buckets(rows, 100, min(2000, seconds * 1000), lag=True)

    cpu0, cpu1, side = http["cpu"]
    stats0, stats1 = http["stats"]
    loop_lag = _loop_lag(stats1.get("loop_lag", []), http.get("phase_start"), seconds, sale_start)
    names = {int(k): v for k, v in stats1.get("threads", {}).items()}
    cpu = _cpu_breakdown(cpu0, cpu1, names)
    cpu.update(side)
    cpu["other"] = round(max(0.0, cpu["other"] - sum(side.values())), 2)
    wall = cpu1.at - cpu0.at
    server_cpu_s = round(cpu.get("server_process", 0.0) * wall, 2)
    answered_in_window = sum(
        1 for r in won + refused if r[DUE] + r[LATENCY] <= wall * 1000.0
    )  # the CPU window opens at the phase start
    sent_in_window = sum(1 for r in rows if r[DUE] <= wall * 1000.0)
    kept_up = not errors and answered_in_window >= 0.9 * sent_in_window > 0
    writers = {}
    for name in ("live_writer", "commerce_writer"):
        a, b = stats0.get(name, {}), stats1.get(name, {})
        if b:
            batches = b["batches"] - a.get("batches", 0)
            commands = b["commands"] - a.get("commands", 0)
            writers[name] = {
                "batches": batches,
                "commands": commands,
                "mean_batch": round(commands / batches, 1) if batches else None,
                "replays": b["replays"] - a.get("replays", 0),
                "until": "end of drain" if stats1.get("taken_after_drain") else "end of window",
            }

    naive_s = naive["window_s"]
    naive_attempts_per_s = naive["attempts_per_s"]
    won_per_s_until_sold_out = (
        round(len(won) / (last_win_ms / 1000.0), 1) if won and last_win_ms else None
    )
    speedup = round(attempts_per_s / naive_attempts_per_s, 1) if naive_attempts_per_s else None
    p99 = _pcts([r[LATENCY] for r in won + refused])["p99"]
    gens = http["generators"]
    figures: dict[str, Any] = {
        "benchmark": "flash-deal",
        "rate_target_per_s": settings["rate"],
        "seconds": seconds,
        "attempts_sent": len(rows),
        "sent_per_s": round(len(rows) / seconds, 1),
        "attempts_handled": handled,
        "attempts_per_s": round(attempts_per_s, 1),
        "last_answer_s": round(finished_s, 3),
        "won": len(won),
        "refused": len(refused),
        "refused_by_reason": dict(Counter(r[CODE] for r in refused)),
        "other_answers": dict(other),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "oversold": checks["oversold"],
        "per_buyer_violations": checks["per_buyer_violations"],
        "latency_ms": {
            "all": _pcts([r[LATENCY] for r in won + refused]),
            "won": _pcts([r[LATENCY] for r in won]),
            "refused": _pcts([r[LATENCY] for r in refused]),
        },
        "send_lag_ms": _pcts([r[LAG] for r in rows]),
        "last_win_ms": None if last_win_ms is None else round(last_win_ms, 1),
        "first_sold_out_answer_ms": round(min(sold_out), 1) if sold_out else None,
        "won_per_s_until_sold_out": won_per_s_until_sold_out,
        "timeline": timeline,
        "sale_start_100ms": sale_start,
        "loop_lag_ms": loop_lag,
        "checks": checks,
        "warmup": {
            "seconds": settings["warmup_s"],
            "answers": http["warmup"],
            "checks": warm_checks,
        },
        "server_cpu_s": server_cpu_s,
        "server_cpu_window_s": round(wall, 2),
        # Only meaningful when the window's answers are the window's attempts: an overloaded
        # server spends the window on a backlog (and on attempts whose clients gave up).
        "kept_up": kept_up,
        "server_cpu_ms_per_attempt": (
            round(server_cpu_s * 1000 / answered_in_window, 3) if kept_up else None
        ),
        "cpu_cores_used": cpu,
        "writers": writers,
        "load": {
            "generators": settings["generators"],
            "prewarmed_connections": settings["prewarmed_connections"],
            "connections_opened": sum(g["connections_opened"] for g in gens),
            "max_in_flight": sum(g["max_in_flight"] for g in gens),
            "waited_for_connection": sum(g["waited_for_connection"] for g in gens),
            "generator_cpu_s": round(sum(g["cpu_s"] for g in gens), 2),
            "late_start_ms": max(g["late_start_ms"] for g in gens),
            "timeout_s": settings["timeout_s"],
        },
        "settings": settings,
        "naive": {
            "threads": settings["naive_threads"],
            "seconds": naive_s,
            "attempts_per_s": naive_attempts_per_s,
            "won_per_s": naive["won_per_s"],
            "outcomes": naive["outcomes"],
            "conflicts": naive["conflicts"],
            "won_latency_ms": _pcts(naive["latencies_ms"]),
            "oversold": naive["oversold"],
            "events_in_deal": naive["events_in_deal"],
            "cpu_cores_used": naive.get("cpu"),
        },
        "speedup": speedup,
        "speedup_won_per_s": (
            round(won_per_s_until_sold_out / naive["won_per_s"], 1)
            if won_per_s_until_sold_out and naive["won_per_s"]
            else None
        ),
        "goal": GOAL,
        "goal_met": {
            "attempts_per_s": attempts_per_s >= GOAL["attempts_per_s"],
            "p99_ms": p99 is not None and p99 <= GOAL["p99_ms"],
            "oversold": checks["oversold"] == 0 and checks["per_buyer_violations"] == 0,
            "no_errors": not errors,
            "speedup": speedup is not None and speedup >= GOAL["speedup"],
        },
        "machine": machine,
    }
    if http.get("profile"):
        figures["profile"] = http["profile"]
    noteworthy = [ln for ln in server_log.splitlines() if ln.strip() and "Shutting down" not in ln]
    if noteworthy:
        figures["server_log_tail"] = noteworthy[-10:]
    return figures


def print_summary(console: Any, f: dict[str, Any]) -> None:
    lat, won_lat = f["latency_ms"]["all"], f["latency_ms"]["won"]
    naive = f["naive"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    console.print(
        f"[bold]{f['attempts_per_s']:.0f} claim attempts/s handled[/] "
        f"(target {f['rate_target_per_s']:g}/s, sent {f['attempts_sent']}): "
        f"{f['won']} won, {f['refused']} refused (409), {f['errors']} errors, "
        f"oversold {f['oversold']}, per-buyer violations {f['per_buyer_violations']}"
    )
    console.print(
        f"  latency ms, all: p50 {ms(lat['p50'])} p90 {ms(lat['p90'])} p99 {ms(lat['p99'])} "
        f"max {ms(lat['max'])}; winners: p50 {ms(won_lat['p50'])} p99 {ms(won_lat['p99'])} "
        f"max {ms(won_lat['max'])}; last win at {ms(f['last_win_ms'])} ms"
    )
    if f.get("loop_lag_ms"):
        loop = f["loop_lag_ms"]
        console.print(
            f"  event loop late (10 ms sleeps), ms: p50 {ms(loop['p50'])} p99 {ms(loop['p99'])} "
            f"max {ms(loop['max'])}; worst per 100 ms of the sale's start: "
            f"{[s.get('loop_lag_max_ms') for s in f['sale_start_100ms'][:10]]}"
        )
    console.print(
        f"  server CPU {f['server_cpu_s']} s ({f['server_cpu_ms_per_attempt']} ms/attempt); "
        f"cores: {f['cpu_cores_used']}"
    )
    checks, lag = f["checks"], f["checks"]["order_lag_ms"]
    console.print(
        f"  orders ({f['settings']['claim_orders']}): {checks['orders_for_live_claims']} for "
        f"{checks['units_claimed']} units claimed, placed p50 {ms(lag['p50'])} p99 "
        f"{ms(lag['p99'])} max {ms(lag['max'])} ms after their claim; all placed "
        f"{checks['orders_caught_up_after_load_s']} s after the load"
    )
    console.print(
        f"  baseline: {naive['attempts_per_s']:.0f} attempts/s, {naive['won_per_s']:.0f} won/s "
        f"({naive['conflicts']} conflicts, oversold {naive['oversold']}): "
        f"[bold]×{f['speedup'] or 0:.1f}[/]; goal met: {f['goal_met']}"
    )
