"""Processes the `redcart bench fanout` driver starts: load generators and the two servers.

Kept apart from bench.fanout so the driver reads as the measurement it is. Load generators are
``spawn``-ed multiprocessing children (bench.fanout_client.main) spoken to over a pipe; servers
are subprocesses in their own session that die with the driver (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.orders import _die_with_parent, _free_port, _serve_command
from redcart.http_protocol import HTTP_PROTOCOL, KEEP_ALIVE_SECONDS

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Another uvicorn --factory target for the hub, to try server-side changes (bench.fanout_paced)
SERVER_APP = os.environ.get("REDCART_BENCH_SERVER_APP") or "bench.fanout_server:hub_app"
# uvicorn by default: the hub writes prebuilt frames straight to its websocket transport; on
# granian (`redcart serve --server granian`) every frame goes through ASGI send
HUB_SERVER = os.environ.get("REDCART_BENCH_SERVER") or "uvicorn"


# -- load generator processes ------------------------------------------------------------------


class Gen:
    def __init__(self, ctx: Any, probes: bool) -> None:
        from bench import fanout_client

        self.pipe, child = ctx.Pipe()
        self.probes = probes
        self.proc = ctx.Process(target=fanout_client.main, args=(child,), daemon=True)
        self.proc.start()

    def send(self, command: str, *args: Any) -> None:
        self.pipe.send((command, args))

    def recv(self, timeout: float = 120) -> Any:
        if not self.pipe.poll(timeout):
            raise TimeoutError("load generator did not answer")
        return self.pipe.recv()


def ask_all(gens: list[Gen], command: str, *args: Any) -> list[Any]:
    for gen in gens:
        gen.send(command, *args)
    return [gen.recv() for gen in gens]


@contextlib.contextmanager
def loadgens(count: int, pin: bool) -> Iterator[list[Gen]]:
    ctx = multiprocessing.get_context("spawn")
    gens = [Gen(ctx, False) for _ in range(count)] + [Gen(ctx, True)]
    try:
        if pin:
            for gen in gens:
                os.sched_setaffinity(gen.proc.pid, {1})
        yield gens
    finally:
        for gen in gens:
            with contextlib.suppress(Exception):
                gen.send("exit")
        for gen in gens:
            gen.proc.join(5)
            if gen.proc.is_alive():
                gen.proc.kill()


# -- servers -----------------------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, log: Any) -> None:
        self.port = _free_port()
        if kind == "hub" and HUB_SERVER != "uvicorn":
            cmd = _serve_command(SERVER_APP, self.port, server=HUB_SERVER)
        elif kind == "hub":  # its own flags: a backlog of 4,096 for 5,000 viewers at once
            cmd = [
                sys.executable, "-m", "uvicorn", SERVER_APP, "--factory",
                "--host", "127.0.0.1", "--port", str(self.port), "--loop", "uvloop",
                "--http", HTTP_PROTOCOL, "--ws", "websockets-sansio",
                "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS),
                "--ws-per-message-deflate", "false", "--backlog", "4096",
                "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
        else:
            cmd = [sys.executable, "-m", "bench.fanout_server", "baseline", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip

    def get(self, path: str, timeout: float = 30) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            return json.loads(r.read())

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            with contextlib.suppress(OSError, ValueError):
                self.get("/__bench/status", timeout=2)
                return
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready in 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine_busy() -> int:
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:8]]
    return sum(values) - values[3] - values[4]
