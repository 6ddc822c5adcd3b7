"""A buyer's retried claim is answered as first decided, even by a process that did not decide it.

Clients retry a claim with the same Idempotency-Key when an answer is lost, typically because
the server went away. The process that then owns the deal (the restarted one, or another that
took the deal over) refuses on the event loop what it knows it would refuse, sold out included;
a claim recorded before it owned the deal must still reach the deal and get its 201 and order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from litestar.testing import TestClient

from redcart.app import create_app
from redcart.wiring import build_commerce, migrate
from tests.conftest import make_settings
from tests.integration.conftest import Shop, sign_up
from tests.live_api.conftest import Clock
from tests.live_api.test_deals_http import claim, live_session, open_deal, settled


@contextmanager
def api(store_url: str | None, var: Path, clock: Clock) -> Iterator[TestClient]:
    """One API process's life: started on the store, stopped at the end of the block."""
    settings = make_settings(store_url, var)
    runtime = build_commerce(settings)
    runtime.cfg = dataclasses.replace(runtime.cfg, clock=clock)
    app = create_app(settings, runtime, env={"REDCART_PAYMENTS": "off"})
    with TestClient(app=app) as client:
        yield client


def test_a_claim_retried_after_a_restart_gets_its_first_answer_though_the_deal_sold_out(
    store_url: str | None, tmp_path: Path, clock: Clock
) -> None:
    var = tmp_path / "var"
    migrate(make_settings(store_url, var))
    with api(store_url, var, clock) as before:
        shop = Shop(before, bonded=5, direct=0)
        deal = open_deal(before, shop, live_session(before, shop), quantity=2)
        buyers = [sign_up(before, f"rr{i}") for i in range(3)]
        clock.advance(11)
        first = claim(before, deal["id"], buyers[0], "lost-answer")
        assert first.status_code == 201, first.text

    with api(store_url, var, clock) as after:  # the restarted process owns the deal now
        assert claim(after, deal["id"], buyers[1], "b1").status_code == 201  # the last unit
        late = claim(after, deal["id"], buyers[2], "c1")
        assert late.status_code == 409 and late.json()["units_left"] == 0  # known: sold out
        retried = claim(after, deal["id"], buyers[0], "lost-answer")
        assert retried.status_code == 201, retried.text
        assert retried.headers["idempotent-replayed"] == "true"
        assert retried.json()["id"] == first.json()["id"]  # the same claim, not a second one
        assert retried.json()["order_id"] == first.json()["order_id"]
        placed = settled(after, first.json(), buyers[0])  # placed before or after the restart
        assert placed["state"] == "placed" and placed["order"]["id"] == first.json()["order_id"]
