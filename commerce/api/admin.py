"""Operator endpoints: onboarding merchants and setting FX rates (admin key only)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post, put
from litestar.params import Parameter

from commerce.api import schemas
from commerce.api.auth import require
from commerce.api.common import answer, page
from commerce.api.runtime import CommerceRuntime
from commerce.credentials import MERCHANT_PREFIX, issue
from commerce.domain import ids
from commerce.domain.accounts import FxRate
from commerce.domain.errors import NotFound
from commerce.representations import fx_view
from commerce.services import catalog
from commerce.services.access import ADMIN, Principal
from commerce.services.idempotency import Idempotency


class AdminController(Controller):
    path = "/admin"
    tags = ("admin",)

    @post("/merchants", status_code=201)
    async def onboard_merchant(
        self,
        data: schemas.OnboardMerchant,
        principal: Principal,
        idempotency: Idempotency | None,
        runtime: CommerceRuntime,
    ) -> Response:
        """Onboard a merchant. The answer carries its API key, which is never shown again."""
        require(principal, ADMIN)
        result = await runtime.writer.submit(
            catalog.onboard_merchant,
            runtime.cfg,
            idempotency,
            data.name,
            data.home_country,
            data.settlement_currency,
        )
        key = issue(MERCHANT_PREFIX, UUID(result.body["id"]), runtime.cfg.secret_key)
        return answer(result, api_key=key)

    @get("/merchants")
    async def list_merchants(
        self,
        principal: Principal,
        runtime: CommerceRuntime,
        cursor: str | None = None,
        limit: int = Parameter(default=50),
    ) -> dict:
        require(principal, ADMIN)
        return await page(runtime, "list_merchants", {}, cursor, limit)

    @put("/fx-rates/{currency:str}")
    async def set_fx_rate(
        self, currency: str, data: schemas.SetFxRate, principal: Principal, runtime: CommerceRuntime
    ) -> dict:
        """Set how many CNY one unit of a currency costs; every change is kept as an event."""
        require(principal, ADMIN)
        return await runtime.writer.submit(
            catalog.set_fx_rate, runtime.cfg, currency, data.cny_per_unit, principal.name
        )


@get("/fx-rates/{currency:str}", tags=["catalog"])
async def get_fx_rate(currency: str, runtime: CommerceRuntime) -> dict:
    fx = await runtime.read(ids.fx_rate_id(currency.upper()), FxRate)
    if fx is None or fx.rate is None:
        raise NotFound(f"no FX rate is set for {currency}", field="currency")
    return fx_view(fx)
