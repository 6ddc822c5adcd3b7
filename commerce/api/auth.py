"""Bearer credentials: the admin key from settings, merchant API keys, buyer tokens."""

from __future__ import annotations

import hashlib

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from commerce.api.deps import Caller, Runtime
from commerce.api.runtime import CommerceRuntime
from commerce.domain.errors import InvalidInput
from commerce.services.access import Principal
from commerce.services.idempotency import Idempotency

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="redcart"'}


async def authenticated(
    connection: ASGIConnection, runtime: CommerceRuntime | None = None
) -> Principal:
    """The caller, checked once per request (guards and handlers share the answer)."""
    principal = connection.state.get("principal")
    if principal is not None:
        return principal
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(
            "send 'Authorization: Bearer <key or token>'", headers=CHALLENGE
        )
    runtime = runtime or connection.app.state.commerce
    principal = await runtime.authenticate(token.strip())
    if principal is None:
        raise NotAuthorizedException("unknown or revoked credentials", headers=CHALLENGE)
    connection.state["principal"] = principal
    return principal


async def provide_principal(request: Request, runtime: Runtime) -> Principal:
    # Depending on `runtime` keeps the dependencies a chain (runtime → principal →
    # idempotency): Litestar resolves a level with several async dependencies in a task group,
    # which costs more than the lookups themselves on the order path.
    return await authenticated(request, runtime)


def allow(*kinds: str) -> Guard:
    """A guard: who may call a route, decided before its body is even read."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal = await authenticated(connection)
        if principal.kind not in kinds:
            raise PermissionDeniedException(f"this needs a {' or '.join(kinds)} credential")

    return guard


async def provide_idempotency(request: Request, principal: Caller) -> Idempotency | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not valid_key(key):
        raise InvalidInput("must be 1 to 255 printable characters", field="Idempotency-Key")
    body = await request.body()
    return Idempotency(principal.name, key, fingerprint(request.method, request.url.path, body))


def valid_key(key: str) -> bool:
    return 0 < len(key) <= 255 and key.isprintable()


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What a retry must repeat exactly: the same key with another body is another request."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
