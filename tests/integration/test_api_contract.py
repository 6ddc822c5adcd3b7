"""The OpenAPI document tells the truth: every answer of a running server, to generated valid
and invalid requests on every operation, has a documented status, media type and shape; input
that breaks a documented rule is refused with a 4xx; an operation documented as needing
credentials refuses a request without them or with made-up ones; nothing answers 500.

Integrators generate clients from /schema/openapi.json (redcart.openapi_contract completes what
Litestar infers). schemathesis (hypothesis underneath) generates the requests from that document,
and sends them to a real uvicorn server over a store loaded with the demo data, as each caller
in turn (merchant, buyer, admin), with path ids often swapped for ids that exist so requests get
past the 404 and into the domain.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation import GenerationMode

from redcart.demo import load_demo
from redcart.settings import Settings
from redcart.wiring import migrate
from tests.conftest import ADMIN_KEY
from tests.servers import ApiServer, settings_env

load_all_checks()
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
)
CHECKED = [check for check in CHECKS.get_all() if check.__name__ in CHECK_NAMES]
# A body over the size limit is refused too, before it is read (413).
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
)
EXAMPLES = 12  # per operation and generation mode: about 40 s for the whole document


def _demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict]]:
    var = tmp_path_factory.mktemp("contract")
    env = settings_env(None, var)
    migrate(Settings.from_env(env))
    demo = load_demo(Settings.from_env(env), once=True)
    server = ApiServer(env, var / "server.log").wait_ready()
    try:
        yield server, _known_ids(server.url, demo)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict]]:
    """Shared by the generated requests, which change what they reach (delete notes, end
    sessions)."""
    yield from _demo_server(tmp_path_factory)


@pytest.fixture(scope="module")
def untouched_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict]]:
    """The demo as loaded: for answers whose every part must be there."""
    yield from _demo_server(tmp_path_factory)


def _known_ids(url: str, demo: dict) -> dict[str, Any]:
    """Ids that exist, by path parameter name, and who may call: what the fuzzer starts from."""
    merchant = {"Authorization": f"Bearer {demo['merchants'][0]['api_key']}"}
    product = httpx.get(f"{url}/products", headers=merchant).json()["items"][0]
    warehouse = httpx.get(f"{url}/warehouses", headers=merchant).json()["items"][0]
    return {
        "callers": [
            merchant,
            {"Authorization": f"Bearer {demo['buyer']['token']}"},
            {"Authorization": f"Bearer {ADMIN_KEY}"},
        ],
        "ids": {
            "product_id": product["id"],
            "warehouse_id": warehouse["id"],
            "order_id": demo["demo_order"],
            "session_id": demo["live"]["session_id"],
            "deal_id": demo["live"]["deal_id"],
            "note_id": demo["notes"][0],
            "buyer_id": demo["buyer"]["id"],
            "user_id": demo["buyer"]["id"],
            "merchant_id": demo["merchants"][0]["id"],
            "currency": "JPY",
        },
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_documented(mode: GenerationMode, demo_server: tuple) -> None:
    """One hypothesis run per operation (schemathesis' own pytest loader does not run on
    pytest 9); every operation is tried, and the failures are listed together."""
    server, known = demo_server
    document = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json", config=CONFIG)
    failures = []
    for result in document.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,  # the same examples on every machine
            derandomize=True,
        )
        def answers_as_documented(case: Any) -> None:
            pick = random.Random(repr(case.path_parameters))
            if case.path_parameters and pick.random() < 0.7:
                case.path_parameters = {
                    name: known["ids"].get(name, value)
                    for name, value in case.path_parameters.items()
                }
            # each caller's credentials in place of generated ones; a request generated
            # without credentials (to be refused for it) is sent without
            sent = known["callers"] if "Authorization" in (case.headers or {}) else [{}]
            for caller in sent:
                case.call_and_validate(base_url=server.url, headers=caller, checks=CHECKED)

        try:
            answers_as_documented()
        except Unsatisfiable:
            continue  # negative mode: the operation has no rule a request could break
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_document_describes_errors_and_credentials(demo_server: tuple) -> None:
    server, _ = demo_server
    document = httpx.get(f"{server.url}/schema/openapi.json").json()
    claim = document["paths"]["/live/deals/{deal_id}/claims"]["post"]
    assert claim["security"] == [{"bearer": []}]
    key = next(p for p in claim["parameters"] if p["name"] == "Idempotency-Key")
    assert key["in"] == "header" and key["required"] is True
    problem = {"$ref": "#/components/schemas/Problem"}
    for status in ("400", "401", "404", "409", "422"):
        assert claim["responses"][status]["content"]["application/problem+json"]["schema"] == (
            problem
        )
    assert "security" not in document["paths"]["/search"]["get"]
    assert document["components"]["schemas"]["ClaimDeal"]["additionalProperties"] is False
    allow = httpx.options(f"{server.url}/notes/x").headers["allow"]
    assert set(allow.split(", ")) == {"GET", "PUT", "DELETE", "OPTIONS"}


def test_read_live_and_payment_answers_have_exactly_the_documented_fields(
    untouched_demo: tuple,
) -> None:
    """Strictly decoded (no field missing, none unknown), so the shapes cannot drift, whatever
    the generated requests above happened to reach."""
    from livestream.api import responses as live
    from payments import responses as pay
    from projections.api import responses as reads

    server, known = untouched_demo
    ids, merchant = known["ids"], known["callers"][0]
    pages = [
        (f"/products/{ids['product_id']}/page", reads.ProductPage),
        ("/search?q=%E9%98%B2%E6%99%92", reads.SearchPage),  # 防晒
        ("/feed/trending?kind=note", reads.TrendingFeed),
        ("/feed/trending?kind=product", reads.TrendingFeed),
        (f"/products/{ids['product_id']}/notes", reads.NoteList),
        (f"/buyers/{ids['buyer_id']}/notes", reads.NoteList),
        (f"/orders/{ids['order_id']}/attribution", reads.Attribution),
        (f"/orders/{ids['order_id']}/payments", pay.Payments),
        (f"/live/sessions/{ids['session_id']}", live.Session),
        ("/live/sessions?state=live", live.Sessions),
        (f"/live/sessions/{ids['session_id']}/deals", live.Deals),
        (f"/live/deals/{ids['deal_id']}", live.Deal),
    ]
    for path, shape in pages:
        answer = httpx.get(server.url + path, headers=merchant)
        assert answer.status_code == 200, (path, answer.text)
        decoded = msgspec.json.decode(answer.content, type=shape)
        assert decoded is not None
    trending = httpx.get(f"{server.url}/feed/trending?kind=product").json()["items"][0]["id"]
    page = msgspec.json.decode(
        httpx.get(f"{server.url}/products/{trending}/page").content, type=reads.ProductPage
    )
    assert page.notes and page.offers and page.warehouses  # every part of a page was checked
