"""Every error as RFC 9457 problem+json, mapped from domain errors in this one place."""

from __future__ import annotations

import logging
import time
from typing import Any

from eventsourcing.persistence import OperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from commerce.domain import errors
from commerce.platform.groupcommit import WriterUnavailable

log = logging.getLogger("redcart.api")
MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://redcart.dev/problems/"

STATUS = {
    errors.NotFound: 404,
    errors.InvalidInput: 422,
    errors.LimitBreached: 422,
    errors.IdempotencyKeyReused: 422,
    errors.Conflict: 409,
}


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    headers: dict | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body = problem_body(status, title, detail, code, extra)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def problem_body(
    status: int, title: str, detail: str, code: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in (extra or {}).items() if v is not None and k not in body})
    return body


def domain_problem(exc: errors.DomainError) -> dict[str, Any]:
    """The problem document of a domain error (its `status` is the HTTP status)."""
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    extra = {k: (str(v) if not isinstance(v, int | str) else v) for k, v in exc.extra.items()}
    return problem_body(status, _title(exc), exc.detail, exc.code, {"field": exc.field, **extra})


def domain_error(_: Request, exc: errors.DomainError) -> Response:
    body = domain_problem(exc)
    return Response(body, status_code=body["status"], media_type=MEDIA_TYPE)


def _title(exc: errors.DomainError) -> str:
    return {
        errors.NotFound: "Not found",
        errors.OutOfStock: "Out of stock",
        errors.InvalidTransition: "Not allowed in this state",
        errors.LimitBreached: "Cross-border limit exceeded",
        errors.IdempotencyKeyReused: "Idempotency-Key reused",
    }.get(type(exc), "Invalid request" if isinstance(exc, errors.InvalidInput) else "Conflict")


def validation_error(_: Request, exc: ValidationException) -> Response:
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        key = item.get("key") if isinstance(item, dict) else None
        message = item.get("message") if isinstance(item, dict) else str(item)
        problems.append({"field": _field_path(key, message), "message": message})
    first = problems[0] if problems else {"field": None, "message": exc.detail}
    return problem(
        400,
        "Malformed request",
        f"{first['field']}: {first['message']}" if first["field"] else str(first["message"]),
        "malformed_request",
        extra={"field": first["field"], "errors": problems or None},
    )


def _field_path(key: Any, message: str | None) -> str | None:
    """msgspec reports `... - at `$.lines[0].quantity``; turn that into `lines[0].quantity`."""
    if message and "at `$." in message:
        return message.rsplit("at `$.", 1)[1].rstrip("`")
    return key if isinstance(key, str) else None


def http_error(_: Request, exc: HTTPException) -> Response:
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }
    return problem(
        exc.status_code,
        exc.detail if exc.status_code >= 500 else _reason(exc.status_code),
        exc.detail,
        code.get(exc.status_code, "http_error"),
        headers=exc.headers,
    )


def _reason(status: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status).phrase


UNAVAILABLE_HEADERS = {"Retry-After": "1"}
_shed = {"logged_at": -1e9, "unlogged": 0}


def unavailable_problem(reason: str) -> dict[str, Any]:
    """The 503 document, logged at most once a second: a burst that overloads the store would
    otherwise also flood the log, one line per refused request, when it can least afford it."""
    now = time.monotonic()
    if now - _shed["logged_at"] >= 1.0:
        more = f" (and {_shed['unlogged']} more since the last line)" if _shed["unlogged"] else ""
        log.warning("store unavailable: %s%s", reason, more)
        _shed.update(logged_at=now, unlogged=0)
    else:
        _shed["unlogged"] += 1
    return problem_body(
        503, "Service unavailable", "the event store is busy or unreachable; retry", "unavailable"
    )


def unavailable(_: Request, exc: Exception) -> Response:
    body = unavailable_problem(type(exc).__name__)
    return Response(body, status_code=503, media_type=MEDIA_TYPE, headers=UNAVAILABLE_HEADERS)


def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        500, "Internal error", "something went wrong on our side; it has been logged", "internal"
    )


EXCEPTION_HANDLERS = {
    errors.DomainError: domain_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    WriterUnavailable: unavailable,
    OperationalError: unavailable,
    Exception: unexpected,
}
