"""The claim route's fast path: a flash deal's claims served without Litestar's per-request
machinery.

When a deal opens, thousands of buyers claim within a second, and once it sells out nearly
every claim is a 409 that must still be checked and answered. Through the declared handler a
claim costs about half a millisecond of the event loop before the deal is even asked: guards,
a dependency task group, the signature model, response objects, the exception middleware's
rendering. This route middleware does the same checks in the same order (credentials, the
Idempotency-Key, the body, the claim's own checks) and runs the same use case
(livestream.api.claims), answering domain errors as the same problem documents.

Anything unusual falls through, with its body, to the declared handler, so that errors look
exactly as everywhere else in the API: missing or wrong credentials, a missing or malformed
Idempotency-Key, a body that is too large or does not decode.

A claim shed because too many are in flight (livestream.api.claims) is answered here too, with
the handler's 503: through Litestar's exception machinery a shed claim cost about four refusals'
worth of the event loop, taken from the claims being committed in a sale's first second.
"""

from __future__ import annotations

from typing import Any

import msgspec

from commerce.api.auth import fingerprint, valid_key
from commerce.api.problems import (
    MEDIA_TYPE,
    UNAVAILABLE_HEADERS,
    domain_problem,
    unavailable_problem,
)
from commerce.domain.errors import DomainError
from commerce.platform.groupcommit import WriterUnavailable
from commerce.services.access import BUYER, Principal
from commerce.services.idempotency import Idempotency
from livestream.api import claims

MAX_FAST_BODY = 16 * 1024  # a claim is a few hundred bytes; larger bodies take the long way
_decode = msgspec.json.Decoder(claims.ClaimDeal).decode
_encode = msgspec.json.Encoder().encode
_JSON = b"application/json"
_PROBLEM = MEDIA_TYPE.encode()
_UNAVAILABLE = [(k.lower().encode(), v.encode()) for k, v in UNAVAILABLE_HEADERS.items()]


class ClaimFastPath:
    """Route middleware (Litestar `middleware=[ClaimFastPath]`) for POST .../claims."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        live = scope["litestar_app"].state.live
        principal, key, length = await _credentials(scope, live)
        if principal is None or key is None or length is None:
            await self.app(scope, receive, send)
            return
        body, complete = await _read(receive, length)
        data = _parse(body) if complete else None
        if data is None:
            await self.app(scope, _replay(body, complete, receive), send)
            return
        path = scope.get("root_path", "") + scope["path"]
        idem = Idempotency(principal.name, key, fingerprint("POST", path, body))
        try:
            claimed = await claims.claim(
                live, principal, scope["path_params"]["deal_id"], data, idem
            )
        except DomainError as exc:
            status, problem = _problem_of(exc)
            await _respond(send, status, _PROBLEM, problem)
            return
        except WriterUnavailable as exc:  # shed (too many in flight) as cheaply as we can
            shed = _encode(unavailable_problem(type(exc).__name__))
            await _respond(send, 503, _PROBLEM, shed, _UNAVAILABLE)
            return
        replayed = [(b"idempotent-replayed", b"true")] if claimed.replayed else []
        await _respond(send, claimed.status_code, _JSON, _encode(claimed.body), replayed)


async def _credentials(scope: Any, live: Any) -> tuple[Principal | None, str | None, int | None]:
    """The buyer, the Idempotency-Key and the Content-Length, if all are there and well formed."""
    token = key = length = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else None
        elif name == b"idempotency-key":
            key = value.decode("latin-1")
        elif name == b"content-length" and value.isdigit():
            length = int(value)
    if not token or key is None or not valid_key(key):
        return None, None, None
    if length is None or length > MAX_FAST_BODY:
        return None, None, None
    principal = await live.commerce.authenticate(token)
    if principal is None or principal.kind != BUYER:
        return None, None, None
    return principal, key, length


async def _read(receive: Any, length: int) -> tuple[bytes, bool]:
    """The body, and whether it is all there (a body longer than announced is not)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let Litestar see it
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > length or size > MAX_FAST_BODY:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True


_problems: dict[tuple, tuple[int, bytes]] = {}
MAX_PROBLEMS_REMEMBERED = 1024


def _problem_of(exc: DomainError) -> tuple[int, bytes]:
    """A refusal's status and problem document, encoded once per distinct refusal: once a deal
    sells out nearly every claim gets one of a handful of answers, and building each anew was
    a twelfth of a refusal's time on the event loop."""
    try:
        key = (type(exc), exc.detail, exc.field, *sorted(exc.extra.items()))
        found = _problems.get(key)
    except TypeError:  # an unhashable detail: not worth remembering
        key, found = None, None
    if found is None:
        problem = domain_problem(exc)
        found = problem["status"], _encode(problem)
        if key is not None:
            if len(_problems) >= MAX_PROBLEMS_REMEMBERED:
                _problems.clear()
            _problems[key] = found
    return found


def _parse(body: bytes) -> claims.ClaimDeal | None:
    try:
        return _decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # the handler answers it as the API answers every undecodable body


def _replay(body: bytes, complete: bool, receive: Any) -> Any:
    """A `receive` that hands over what was read already, then whatever is still to come."""
    pending = True

    async def again() -> dict:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return again


async def _respond(
    send: Any, status: int, media: bytes, body: bytes, extra: list | None = None
) -> None:
    headers = [(b"content-type", media), (b"content-length", b"%d" % len(body)), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
