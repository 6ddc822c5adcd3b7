"""What the OpenAPI document promises beyond what Litestar infers from the handlers.

Integrators generate clients from /schema/openapi.json, so it must describe the API they will
meet, errors included. Litestar documents a 400 as `application/json` and nothing else; every
error here is RFC 9457 `application/problem+json`, and a call can also be refused for its
credentials, a missing resource, a state conflict, a body too large or a store that is briefly
unavailable. This module adds, in one pass over the routes:

- the `Problem` schema and, per operation, the error statuses it can answer (a handler adds
  its own with `opt={"statuses": (502,)}`);
- the bearer security scheme on every operation that needs credentials (guarded, or taking
  the caller), so documentation tools offer an "Authorize" button;
- the `Idempotency-Key` header wherever a handler honours it (`opt={"idempotency_key":
  "required"}` on a handler marks it required);
- `additionalProperties: false` on request bodies, which refuse unknown fields;
- and an `OPTIONS` answer whose `Allow` lists every method of the path: Litestar answers with
  the methods of one route only when handlers of one path sit in different controllers.

tests/integration/test_api_contract.py checks the promises against a running server with
schemathesis: every answer's status, media type and body match what is documented here.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIResponse,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.routes import HTTPRoute

from commerce.api.problems import MEDIA_TYPE

BEARER = "bearer"
PROBLEM = Reference(ref="#/components/schemas/Problem")
REASONS = {
    400: "Malformed request: a parameter or body that does not match this schema",
    401: "Missing, unknown or revoked credentials",
    403: "These credentials may not do this",
    404: "No such resource, or not one these credentials may see",
    409: "Conflicts with the resource's state (sold out, already shipped, ...)",
    413: "Request body too large",
    422: "Well formed, but breaks a rule (the problem's `field` names the input)",
    502: "The payment provider refused or did not answer",
    503: "The store is busy or unreachable; retry after `Retry-After` seconds",
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def problem_schema() -> Schema:
    text, integer = Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.INTEGER)
    item = Schema(
        type=OpenAPIType.OBJECT,
        properties={"field": Schema(type=[OpenAPIType.STRING, OpenAPIType.NULL]), "message": text},
    )
    return Schema(
        type=OpenAPIType.OBJECT,
        description="RFC 9457 problem details; extra members (such as `units_left`) may follow.",
        required=["type", "title", "status", "detail"],
        properties={
            "type": Schema(type=OpenAPIType.STRING, format="uri"),  # type: ignore[arg-type]
            "title": text,
            "status": integer,
            "detail": text,
            "field": Schema(type=OpenAPIType.STRING, description="the input at fault"),
            "errors": Schema(type=OpenAPIType.ARRAY, items=item),
        },
    )


def complete(app: Litestar) -> None:
    """Add the module's promises to `app.openapi_schema` (before anything has served it)."""
    schema = app.openapi_schema
    components = schema.components or Components()
    schema.components = components
    components.schemas = {**(components.schemas or {}), "Problem": problem_schema()}
    components.security_schemes = {
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            description="The admin key, a merchant API key (rcm_...) or a buyer token (rcb_...)",
        )
    }
    _allow_every_method(app)
    strict: set[str] = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = (schema.paths or {}).get(route.path_format)
        if item is None:
            continue
        for handler in route.route_handlers:
            if not handler.include_in_schema:
                continue
            names = set(handler.parsed_fn_signature.parameters)
            credentials = bool(handler.resolve_guards()) or "principal" in names
            body = handler.parsed_fn_signature.parameters.get("data")
            if body is not None:
                strict.update(_strict_structs(body.annotation))
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if operation is None:
                    continue
                if credentials:
                    operation.security = [{BEARER: []}]
                if "idempotency" in names:
                    required = handler.opt.get("idempotency_key") == "required"
                    operation.parameters = [*(operation.parameters or []), _idempotency(required)]
                statuses = _statuses(method, route.path_parameters, credentials, body is not None)
                statuses = sorted({*statuses, *handler.opt.get("statuses", ())})
                responses = operation.responses or {}
                for status in statuses:
                    responses[str(status)] = OpenAPIResponse(
                        description=REASONS[status],
                        content={MEDIA_TYPE: OpenAPIMediaType(schema=PROBLEM)},
                    )
                operation.responses = responses
    for name in strict:
        found = components.schemas.get(name)
        if isinstance(found, Schema):
            found.additional_properties = False


def _allow_every_method(app: Litestar) -> None:
    """When Litestar merges the handlers of one path from several controllers, the OPTIONS
    handler it keeps answers from the first route's methods (its closure holds that route)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for cell in getattr(handler.fn, "__closure__", None) or ():
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents.methods = set(route.methods)


def _statuses(method: str, path_params: Any, credentials: bool, body: bool) -> list[int]:
    statuses = [400, 422, 503]
    if credentials:
        statuses += [401, 403]
    if path_params or method in WRITES:
        statuses.append(404)
    if method in WRITES:
        statuses.append(409)
    if body:
        statuses.append(413)
    return sorted(statuses)


def _idempotency(required: bool) -> Parameter:
    return Parameter(
        name="Idempotency-Key",
        param_in="header",
        required=required,
        schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
        description="A retry with the same key and body answers as the first call did (with "
        "`Idempotent-Replayed: true`); the same key with another body is a 422.",
    )


def _strict_structs(annotation: Any) -> set[str]:
    """Names of the msgspec structs in a body type that refuse unknown fields."""
    found: set[str] = set()
    seen: set[type] = set()

    def visit(t: Any) -> None:
        if isinstance(t, type) and issubclass(t, msgspec.Struct) and t not in seen:
            seen.add(t)
            if t.__struct_config__.forbid_unknown_fields:
                found.add(t.__name__)
            for field in msgspec.structs.fields(t):
                visit(field.type)
        for arg in getattr(t, "__args__", ()) or ():
            visit(arg)
        if hasattr(t, "__origin__") and hasattr(t, "__metadata__"):  # Annotated[...]
            visit(t.__origin__)

    visit(annotation)
    return found
