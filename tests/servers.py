"""Real API servers in child processes, for claims about concurrency across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import _free_port


class ApiServer:
    """`redcart serve` in a child process, on `server` (uvicorn or granian: redcart.serving)."""

    def __init__(
        self,
        settings_env: dict[str, str],
        log: Path,
        port: int | None = None,
        server: str = "uvicorn",
    ) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = server
        env = {**os.environ, **settings_env, "PYTHONUNBUFFERED": "1"}
        env["REDCART_SANDBOX_AUTOSTART"] = "0"  # tests start their own (SandboxGateways)
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "redcart.cli",
                "serve",
                "--server",
                server,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.log_path = log

    def app_pids(self) -> set[int]:
        """The processes serving the app: `redcart serve` itself on uvicorn (one worker), and
        on granian its worker process (granian's main process only supervises it)."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:  # it has exited
            children = []
        return {pid, *map(int, children)}

    def wait_ready(self, timeout: float = 30.0) -> ApiServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """`redcart worker ARGS...` in a child process, its output appended to `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "redcart.cli", "worker", *args],
        env={**os.environ, **env},
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


def settings_env(database_url: str | None, var_dir: Path) -> dict[str, str]:
    from tests.conftest import ADMIN_KEY, SECRET_KEY

    env = {
        "REDCART_VAR_DIR": str(var_dir),
        "REDCART_ADMIN_KEY": ADMIN_KEY,
        "REDCART_SECRET_KEY": SECRET_KEY,
        "REDCART_SWEEP_INTERVAL_SECONDS": "0.5",
    }
    if database_url:
        env["REDCART_DATABASE_URL"] = database_url
    return env


class SandboxGateways:
    """`redcart sandbox` in a child process, with retries compressed for tests."""

    def __init__(self, var_dir: Path, log: Path) -> None:
        self.alipay_port, self.wechatpay_port = _free_port(), _free_port()
        self.alipay = f"http://127.0.0.1:{self.alipay_port}"
        self.wechatpay = f"http://127.0.0.1:{self.wechatpay_port}"
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "redcart.cli",
                "sandbox",
                "--alipay-port",
                str(self.alipay_port),
                "--wechatpay-port",
                str(self.wechatpay_port),
                "--time-scale",
                "0.001",
            ],
            env={**os.environ, "REDCART_VAR_DIR": str(var_dir)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.wechatpay + "/_sandbox/switches", timeout=1)
                httpx.get(self.alipay + "/_sandbox/switches", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(log.read_text()[-2000:])

    def env(self) -> dict[str, str]:
        return {
            "REDCART_PAYMENTS": "sandbox",
            "REDCART_SANDBOX_ALIPAY_URL": self.alipay,
            "REDCART_SANDBOX_WECHATPAY_URL": self.wechatpay,
        }

    def url(self, provider: str) -> str:
        return self.alipay if provider == "alipay" else self.wechatpay

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._log.close()
