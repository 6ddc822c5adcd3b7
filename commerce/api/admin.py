"""Operator endpoints: onboarding merchants and setting FX rates (admin key only)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, JSONBody

from commerce.api import responses as out
from commerce.api import schemas
from commerce.api.auth import allow
from commerce.api.common import Cursor, PageLimit, answer, page
from commerce.api.deps import Caller, IdemKey, Runtime
from commerce.credentials import MERCHANT_PREFIX, issue
from commerce.domain import ids
from commerce.domain.accounts import FxRate
from commerce.domain.errors import NotFound
from commerce.representations import fx_view
from commerce.services import catalog
from commerce.services.access import ADMIN


class AdminController(Controller):
    path = "/admin"
    guards = (allow(ADMIN),)
    tags = ("admin",)

    @post("/merchants", status_code=201)
    async def onboard_merchant(
        self,
        data: JSONBody[schemas.OnboardMerchant],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.OnboardedMerchant]:
        """Onboard a merchant. The answer carries its API key, which is never shown again."""
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
        principal: Caller,
        runtime: Runtime,
        cursor: Cursor = None,
        limit: PageLimit = 50,
    ) -> out.Page:
        return await page(runtime, "merchants", {}, cursor, limit)

    @put("/fx-rates/{currency:str}")
    async def set_fx_rate(
        self,
        currency: FromPath[str],
        data: JSONBody[schemas.SetFxRate],
        principal: Caller,
        runtime: Runtime,
    ) -> out.FxRate:
        """Set how many CNY one unit of a currency costs; every change is kept as an event."""
        return await runtime.writer.submit(
            catalog.set_fx_rate, runtime.cfg, currency, data.cny_per_unit, principal.name
        )


@get("/fx-rates/{currency:str}", tags=["catalog"])
async def get_fx_rate(currency: FromPath[str], runtime: Runtime) -> out.FxRate:
    fx = await runtime.read(ids.fx_rate_id(currency.upper()), FxRate)
    if fx is None or fx.rate is None:
        raise NotFound(f"no FX rate is set for {currency}", field="currency")
    return fx_view(fx)
