"""The `redcart` command: serve, migrate, demo, bench."""

from __future__ import annotations

import json
import os
import sys

import click

from redcart.serving import APP, LOG_LEVELS, SERVERS
from redcart.serving import run as run_server
from redcart.settings import Settings


@click.group()
def main() -> None:
    """redcart: event-sourced cross-border social commerce and live shopping."""


@main.command()
def migrate() -> None:
    """Create the event store and read-model tables (run once before servers start)."""
    from redcart.wiring import migrate as run_migrations

    settings = Settings.from_env()
    for what in run_migrations(settings):
        click.echo(f"migrated: {what}")


@main.command()
@click.option("--host", default=None, help="Bind address (REDCART_HOST, default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (REDCART_PORT, default 8000).")
@click.option("--workers", default=1, show_default=True, help="Server processes (PostgreSQL).")
@click.option(
    "--server",
    type=click.Choice(SERVERS),
    default="uvicorn",
    envvar="REDCART_SERVER",
    show_default=True,
    help="HTTP server (REDCART_SERVER): granian for a flash sale's API tier, "
    "uvicorn for big live rooms (README: Which HTTP server).",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", hidden=True)
@click.option("--app", "target", default=APP, hidden=True, help="ASGI app (import string).")
@click.option("--factory", is_flag=True, hidden=True, help="--app builds the app.")
def serve(
    host: str | None,
    port: int | None,
    workers: int,
    server: str,
    log_level: str,
    target: str,
    factory: bool,
) -> None:
    """Start the API server."""

    settings = Settings.from_env()
    host, port = host or settings.host, port or settings.port
    store = settings.database_url or f"SQLite under {settings.var_dir}"
    click.echo(f"redcart on http://{host}:{port}  (store: {store.split('@')[-1]}; {server})")
    click.echo(f"  API docs:  http://{host}:{port}/schema")
    click.echo(f"  admin key: {settings.var_dir / 'admin.key'} (or REDCART_ADMIN_KEY)")
    if workers > 1 and not settings.database_url:
        raise click.UsageError("several workers need PostgreSQL (REDCART_DATABASE_URL)")
    sandbox = None
    if (
        os.environ.get("REDCART_PAYMENTS", "sandbox") == "sandbox"
        and os.environ.get("REDCART_SANDBOX_AUTOSTART", "1") != "0"
    ):
        from redcart.sandboxes import start_sandbox_process

        sandbox = start_sandbox_process()
        click.echo("  payments:  sandbox gateways on 127.0.0.1:8601 (alipay), :8602 (wechatpay)")
    try:
        run_server(server, host, port, workers, target, factory, log_level)
    finally:
        if sandbox is not None:
            sandbox.terminate()


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Bind address; keep loopback except inside a private compose network.",
)
@click.option("--alipay-port", default=8601, show_default=True)
@click.option("--wechatpay-port", default=8602, show_default=True)
@click.option(
    "--time-scale",
    default=0.05,
    show_default=True,
    help="Multiplies the providers' notification retry intervals.",
)
def sandbox(host: str, alipay_port: int, wechatpay_port: int, time_scale: float) -> None:
    """Serve the Alipay- and WeChat-Pay-style sandbox gateways on 127.0.0.1."""
    from redcart.sandboxes import serve_sandboxes

    settings = Settings.from_env()
    click.echo(
        f"sandbox gateways: alipay http://127.0.0.1:{alipay_port}, "
        f"wechatpay http://127.0.0.1:{wechatpay_port} (keys in {settings.var_dir}/sandbox)"
    )
    serve_sandboxes(settings.var_dir / "sandbox", alipay_port, wechatpay_port, time_scale)


@main.group()
def payments() -> None:
    """Payment operations."""


@payments.command("reconcile")
@click.option(
    "--bill-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Which daily bill to compare (Beijing date; default today).",
)
def payments_reconcile(bill_date) -> None:  # type: ignore[no-untyped-def]
    """Compare the payment ledger with each gateway's query and daily bill; settle stuck
    pending payments."""
    import asyncio

    from redcart.payments_wiring import reconcile_all

    day = bill_date.date() if bill_date else None
    findings = asyncio.run(reconcile_all(Settings.from_env(), day))
    for f in findings:
        click.echo(
            f"{f.provider:10} {f.out_trade_no}  ours={f.ours:10} gateway={f.theirs:17} {f.action}"
        )
    bad = [f for f in findings if "mismatch" in f.action or "unreachable" in f.action
           or f.action.startswith("bill")]  # fmt: skip
    click.echo(f"{len(findings)} payments checked, {len(bad)} need attention")
    if bad:
        raise SystemExit(1)


@main.group()
def worker() -> None:
    """Background workers (run under a supervisor that restarts them)."""


@worker.command("projections")
@click.option("--view", "views", multiple=True, help="Run only this read model (repeatable).")
@click.option("--inline", is_flag=True, help="All read models in this one process.")
def worker_projections(views: tuple[str, ...], inline: bool) -> None:
    """Keep the read models current (use with REDCART_PROJECTIONS=worker on the API).

    On PostgreSQL: one process per read model, each restarted if it exits."""
    import logging

    from redcart.wiring import projection_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    projection_worker(Settings.from_env(), list(views) or None, inline=inline)


@worker.command("claim-orders")
def worker_claim_orders() -> None:
    """Place flash-deal claims' orders (use with REDCART_CLAIM_ORDERS=worker on the API).

    PostgreSQL only; one process at a time works (a lease), others wait as stand-bys."""
    import logging

    from redcart.wiring import claim_orders_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        claim_orders_worker(Settings.from_env())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@main.group()
def projections() -> None:
    """Read models: where each stands, and blue/green rebuilds."""


@projections.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def projections_status(as_json: bool) -> None:
    """Each projection's generation, tracking position, head of its log and lag."""
    from redcart.wiring import projection_status

    rows = projection_status(Settings.from_env())
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("read model", "projection", "log", "gen", "state", "position", "head",
                  "lag (events)", "lag (s)")  # fmt: skip
    for r in rows:
        cells = (r["view"], r["projection"], r["source"], r["generation"], r["state"],
                 r["position"], r["head"], r["lag_events"], r["lag_seconds"])  # fmt: skip
        table.add_row(*("-" if c is None else str(c) for c in cells))
    Console().print(table)


@projections.command("rebuild")
@click.argument("name")
@click.option("--restart", is_flag=True, help="Discard a half-built generation; start over.")
@click.option(
    "--grace",
    default=3.0,
    show_default=True,
    help="Seconds the old generation stays after the switch, for readers still on it.",
)
def projections_rebuild(name: str, restart: bool, grace: float) -> None:
    """Rebuild read model NAME under a new generation from the event logs, then switch reads.

    The current generation keeps serving (and being updated) until the new one has caught up;
    an interrupted rebuild resumes where it stopped when run again."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from projections import registry
    from redcart.wiring import rebuild_projection

    try:
        registry.find(name)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(f"rebuilding {name}", total=None)
        result = rebuild_projection(
            Settings.from_env(),
            name,
            restart=restart,
            grace_seconds=grace,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    click.echo(
        f"{name}: generation {result['generation']} serves reads (was {result['from_generation']});"
        f" {result['events_applied']} events in {result['build_seconds']}s"
        f" ({result['events_per_s'] or 0:,}/s), then {grace:g}s for readers of the old generation"
    )


@main.command()
@click.option("--once", is_flag=True, help="Skip if demo data was loaded before.")
def demo(once: bool) -> None:
    """Load demo merchants, warehouses, products, stock, FX rates and a buyer with an order."""
    from redcart.demo import load_demo

    result = load_demo(Settings.from_env(), once=once)
    tries = result.pop("try", [])
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    click.echo("\nTry:\n" + "\n".join(f"  {line}" for line in tries))


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print figures as JSON only.")
@click.option("--seconds", default=10.0, show_default=True, help="Measured time per phase.")
@click.option("--clients", default=64, show_default=True, help="Concurrent HTTP clients.")
def bench(name: str, as_json: bool, seconds: float, clients: int) -> None:
    """Run a benchmark from bench/ (orders) and print its figures."""
    from bench import REGISTRY

    if name not in REGISTRY:
        raise click.UsageError(f"unknown benchmark {name!r}; known: {', '.join(REGISTRY)}")
    figures = REGISTRY[name](seconds=seconds, clients=clients, progress=not as_json)
    json.dump(figures, sys.stdout, indent=None if as_json else 2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
