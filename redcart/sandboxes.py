"""Runs the payment sandboxes: both gateways in one process, on loopback only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import uvicorn


def serve_sandboxes(
    key_dir: Path, alipay_port: int, wechatpay_port: int, scale: float, host: str = "127.0.0.1"
) -> None:
    from payments.sandbox import create_alipay_sandbox, create_wechatpay_sandbox

    servers = [
        uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        )
        for app, port in (
            (create_alipay_sandbox(key_dir, time_scale=scale), alipay_port),
            (create_wechatpay_sandbox(key_dir, time_scale=scale), wechatpay_port),
        )
    ]

    async def serve_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(serve_all())


def start_sandbox_process() -> subprocess.Popen:
    """`redcart sandbox` as a child of `redcart serve` (the embedded default's one command)."""
    return subprocess.Popen([sys.executable, "-m", "redcart.cli", "sandbox"], env=dict(os.environ))
