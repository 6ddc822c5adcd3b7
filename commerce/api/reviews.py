"""`POST /orders/{order_id}/reviews`: the buyer reviews a product of a delivered order."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from commerce.api.auth import allow
from commerce.api.common import answer, body_uuid, path_uuid
from commerce.api.deps import Caller, Runtime
from commerce.domain.reviews import TEXT_MAX
from commerce.services import reviews
from commerce.services.access import BUYER


class PostReview(msgspec.Struct, forbid_unknown_fields=True):
    product_id: str
    stars: int
    text: Annotated[str, Meta(max_length=TEXT_MAX)] | None = None


class ReviewOut(msgspec.Struct):
    id: str
    order_id: str
    product_id: str
    merchant_id: str
    stars: int
    text: str
    at: str


class ReviewController(Controller):
    path = "/orders/{order_id:str}/reviews"
    tags = ("orders",)

    @post("/", status_code=201, guards=[allow(BUYER)])
    async def post_review(
        self,
        order_id: FromPath[str],
        data: JSONBody[PostReview],
        principal: Caller,
        runtime: Runtime,
    ) -> Response[ReviewOut]:
        """Review one product of your delivered order: 1–5 stars, optional text (≤1000).

        Someone else's order is a 404; an order not yet delivered is a 409; a second, different
        review of the same product of the same order is a 409 (the same one again is answered
        as before)."""
        oid = path_uuid(order_id, "order")
        pid = body_uuid(data.product_id, "product_id")
        result = await runtime.writer.submit(
            reviews.post_review,
            runtime.cfg,
            principal,
            oid,
            pid,
            data.stars,
            data.text,
            probe=reviews.probe_ids(oid, pid),
        )
        return answer(result)
