"""On PostgreSQL the list views can live in a worker process; the API still reads its writes,
and a worker killed mid-stream resumes from its tracked position with nothing lost or doubled."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from redcart.wiring import migrate
from tests.conftest import make_settings
from tests.integration.conftest import ADDRESS, ADMIN
from tests.integration.test_concurrency import resident_id, seed
from tests.servers import ApiServer, settings_env, start_worker

pytestmark = pytest.mark.postgres


def test_lists_kept_by_a_worker_process_survive_its_crash(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(postgres_url, tmp_path / "var")
    migrate(settings)
    env = settings_env(postgres_url, tmp_path / "var") | {"REDCART_PROJECTIONS": "worker"}
    worker = start_worker(env, tmp_path / "worker.log", "projections")
    server = ApiServer(env, tmp_path / "api.log").wait_ready()
    try:
        merchant_id, _, tokens, _ = seed(server.url)
        buyer = {"Authorization": f"Bearer {tokens[0]}"}

        def order(n: int) -> str:
            body = {
                "merchant_id": merchant_id,
                "lines": [{"sku": "LAST-10", "quantity": 1}],
                "identity": {"name": "买家", "resident_id": resident_id(n)},
                "address": ADDRESS,
            }
            r = httpx.post(server.url + "/orders", json=body, headers=buyer, timeout=30)
            assert r.status_code == 201, r.text
            return r.json()["id"]

        def listed() -> list[str]:
            r = httpx.get(server.url + "/orders", headers=buyer, params={"limit": 50}, timeout=30)
            assert r.status_code == 200, r.text
            return [item["id"] for item in r.json()["items"]]

        first = [order(n) for n in range(4)]
        assert listed() == list(reversed(first))  # read-your-writes through the worker
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        later = [order(n) for n in range(4, 7)]
        cancelled = httpx.post(
            f"{server.url}/orders/{later[0]}/cancel", headers=buyer, json={}, timeout=30
        )
        assert cancelled.status_code == 200
        worker = start_worker(env, tmp_path / "worker.log", "projections")
        assert listed() == list(reversed(first + later))
        statuses = {
            i["id"]: i["status"]
            for i in httpx.get(server.url + "/orders", headers=buyer, timeout=30).json()["items"]
        }
        assert statuses[later[0]] == "cancelled"
        assert list(statuses.values()).count("placed") == 6
        admin_list = httpx.get(server.url + "/admin/merchants", headers=ADMIN, timeout=30)
        assert [m["id"] for m in admin_list.json()["items"]] == [merchant_id]
    finally:
        server.stop()
        worker.terminate()
        worker.wait(timeout=10)
