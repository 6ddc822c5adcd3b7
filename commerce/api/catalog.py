"""Merchant endpoints for warehouses, products and stock, plus buyer sign-up."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, get, patch, post
from litestar.params import FromPath, JSONBody

from commerce import credentials
from commerce.api import responses as out
from commerce.api import schemas
from commerce.api.auth import allow
from commerce.api.common import Cursor, PageLimit, answer, body_uuid, page, path_uuid
from commerce.api.deps import Caller, IdemKey, Runtime
from commerce.domain import ids
from commerce.domain.errors import NotFound
from commerce.domain.inventory import Stock
from commerce.domain.merchants import Merchant, Product, Warehouse
from commerce.representations import (
    merchant_view,
    product_view,
    stock_view,
    warehouse_view,
)
from commerce.services import catalog
from commerce.services.access import MERCHANT


class MerchantController(Controller):
    guards = (allow(MERCHANT),)
    tags = ("merchant",)

    @get("/merchants/me")
    async def me(self, principal: Caller, runtime: Runtime) -> out.Merchant:
        merchant = await runtime.read(principal.id, Merchant)
        return merchant_view(merchant)

    @post("/warehouses", status_code=201)
    async def open_warehouse(
        self,
        data: JSONBody[schemas.OpenWarehouse],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.Warehouse]:
        """Open a bonded (1210, inside China) or direct-mail (9610, overseas) warehouse."""
        result = await runtime.writer.submit(
            catalog.open_warehouse,
            runtime.cfg,
            idempotency,
            principal.id,
            data.name,
            data.kind,
            data.country,
            data.address,
        )
        return answer(result)

    @get("/warehouses")
    async def list_warehouses(
        self,
        principal: Caller,
        runtime: Runtime,
        cursor: Cursor = None,
        limit: PageLimit = 50,
    ) -> out.Page:
        where = {"merchant_id": str(principal.id)}
        return await page(runtime, "warehouses", where, cursor, limit)

    @get("/warehouses/{warehouse_id:str}")
    async def get_warehouse(
        self,
        warehouse_id: FromPath[str],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Warehouse:
        warehouse = await runtime.read(path_uuid(warehouse_id, "warehouse"), Warehouse)
        if warehouse is None or warehouse.merchant_id != principal.id:
            raise NotFound("no such warehouse", field="warehouse_id")
        return warehouse_view(warehouse)

    @post("/products", status_code=201)
    async def list_product(
        self,
        data: JSONBody[schemas.ListProduct],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.Product]:
        """List a SKU, priced in integer minor units of the merchant's settlement currency."""
        fields = {f: getattr(data, f) for f in data.__struct_fields__}
        result = await runtime.writer.submit(
            catalog.list_product, runtime.cfg, idempotency, principal.id, fields
        )
        return answer(result)

    @get("/products")
    async def list_products(
        self,
        principal: Caller,
        runtime: Runtime,
        cursor: Cursor = None,
        limit: PageLimit = 50,
    ) -> out.Page:
        where = {"merchant_id": str(principal.id)}
        return await page(runtime, "products", where, cursor, limit)

    @get("/products/{product_id:str}")
    async def get_product(
        self,
        product_id: FromPath[str],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Product:
        product = await runtime.read(path_uuid(product_id, "product"), Product)
        if product is None or product.merchant_id != principal.id:
            raise NotFound("no such product", field="product_id")
        return product_view(product)

    @patch("/products/{product_id:str}")
    async def revise_product(
        self,
        product_id: FromPath[str],
        data: JSONBody[schemas.ReviseProduct],
        principal: Caller,
        runtime: Runtime,
    ) -> out.Product:
        changes = {
            f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not None
        }
        return await runtime.writer.submit(
            catalog.revise_product,
            runtime.cfg,
            principal.id,
            path_uuid(product_id, "product"),
            changes,
        )

    @get("/products/{product_id:str}/stock")
    async def product_stock(
        self,
        product_id: FromPath[str],
        principal: Caller,
        runtime: Runtime,
    ) -> out.ProductStock:
        """Stock per warehouse: on hand, reserved by unpaid or unshipped orders, available."""
        pid = path_uuid(product_id, "product")
        product = await runtime.read(pid, Product)
        if product is None or product.merchant_id != principal.id:
            raise NotFound("no such product", field="product_id")
        merchant = await runtime.read(principal.id, Merchant)
        now, rows = runtime.cfg.clock(), []
        for wid in merchant.warehouse_ids:
            stock = await runtime.read(ids.stock_id(pid, wid), Stock)
            if stock is not None:
                rows.append(stock_view(stock, await runtime.read(wid, Warehouse), now))
        return {
            "product_id": product_id,
            "sku": product.sku,
            "warehouses": rows,
            "available": sum(r["available"] for r in rows),
        }

    @post("/products/{product_id:str}/stock/{warehouse_id:str}/receipts", status_code=201)
    async def receive_stock(
        self,
        product_id: FromPath[str],
        warehouse_id: FromPath[str],
        data: JSONBody[schemas.ReceiveStock],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.WarehouseStock]:
        """Goods arrived at a warehouse."""
        result = await runtime.writer.submit(
            catalog.receive_stock,
            runtime.cfg,
            principal.id,
            path_uuid(product_id, "product"),
            body_uuid(warehouse_id, "warehouse_id"),
            data.quantity,
            idempotency,
        )
        return answer(result)

    @post("/products/{product_id:str}/stock/{warehouse_id:str}/adjustments", status_code=201)
    async def adjust_stock(
        self,
        product_id: FromPath[str],
        warehouse_id: FromPath[str],
        data: JSONBody[schemas.AdjustStock],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.WarehouseStock]:
        """Correct on-hand stock (stocktake, damage); never below what is reserved."""
        result = await runtime.writer.submit(
            catalog.adjust_stock,
            runtime.cfg,
            principal.id,
            path_uuid(product_id, "product"),
            body_uuid(warehouse_id, "warehouse_id"),
            data.delta,
            data.reason,
            idempotency,
        )
        return answer(result)


@post("/buyers", status_code=201, tags=["buyer"])
async def sign_up_buyer(
    data: JSONBody[schemas.SignUpBuyer], runtime: Runtime
) -> Response[out.Buyer]:
    """Sign up as a buyer; the answer carries a bearer token, shown only here.

    No Idempotency-Key here: the caller is anonymous, so a replayed key would hand one
    stranger's token to another. A duplicate sign-up is harmless.
    """
    result = await runtime.writer.submit(
        catalog.sign_up_buyer, runtime.cfg, None, data.display_name
    )
    buyer_id = UUID(result.body["id"])
    return answer(
        result, token=credentials.issue(credentials.BUYER_PREFIX, buyer_id, runtime.cfg.secret_key)
    )
