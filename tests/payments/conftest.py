"""Session-wide sandboxes and a merchant notification receiver, all on real loopback servers.

The sandboxes run with retry schedules compressed 1000x so resends happen within a test.
Each test gets its own notification channel (``/notify/<test id>``) so stray resends from an
earlier test can never be mistaken for this test's traffic.
"""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from payments.sandbox import create_alipay_sandbox, create_wechatpay_sandbox
from payments.sandbox.keys import SandboxKeys, load_or_create_keys
from tests.payments.servers import LoopbackServer, MerchantNotifyReceiver

TIME_SCALE = 0.001


@pytest.fixture(scope="session")
def sandbox_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox-keys")


@pytest.fixture(scope="session")
def notify_receiver() -> Iterator[tuple[MerchantNotifyReceiver, str]]:
    receiver = MerchantNotifyReceiver()
    server = LoopbackServer(receiver.app).start()
    yield receiver, server.url
    server.stop()


@pytest.fixture(scope="session")
def alipay_sandbox(sandbox_key_dir: Path) -> Iterator[tuple[str, SandboxKeys]]:
    server = LoopbackServer(create_alipay_sandbox(sandbox_key_dir, time_scale=TIME_SCALE)).start()
    yield server.url, load_or_create_keys(sandbox_key_dir, "alipay")
    server.stop()


@pytest.fixture(scope="session")
def wechat_sandbox(sandbox_key_dir: Path) -> Iterator[tuple[str, SandboxKeys]]:
    app = create_wechatpay_sandbox(sandbox_key_dir, time_scale=TIME_SCALE)
    server = LoopbackServer(app).start()
    yield server.url, load_or_create_keys(sandbox_key_dir, "wechatpay")
    server.stop()


@pytest.fixture
def channel(request: pytest.FixtureRequest) -> str:
    """A notification channel name unique to the running test (same names in two modules too)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:40]
    return f"{readable}-{hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]}"


def set_switches(base_url: str, **switches: object) -> None:
    response = httpx.put(f"{base_url}/_sandbox/switches", json=switches)
    response.raise_for_status()


def approve(base_url: str, out_trade_no: str) -> None:
    httpx.post(f"{base_url}/_sandbox/pay/{out_trade_no}/approve").raise_for_status()


@pytest.fixture(autouse=True)
def _reset_switches(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests that flip sandbox switches get them reset afterwards, pass or fail."""
    yield
    for name in ("alipay_sandbox", "wechat_sandbox"):
        if name in request.fixturenames:
            base_url, _ = request.getfixturevalue(name)
            set_switches(
                base_url,
                duplicate=False,
                out_of_order=False,
                late_by_seconds=0,
                bad_signature=False,
            )


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """localstripe in its own process on an inherited 127.0.0.1 socket (see the launcher)."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    listening.listen(64)
    url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    launcher = Path(__file__).with_name("localstripe_launcher.py")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(launcher), str(listening.fileno())],
            pass_fds=[listening.fileno()],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    listening.close()  # the child holds its own copy
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/v1/customers", headers={"Authorization": "Bearer sk_test_x"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(
                        f"localstripe did not start: {log_path.read_text()}"
                    ) from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
