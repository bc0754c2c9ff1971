"""RFC 7807 problem+json for every side API failure, with field-level details."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from registry.api.auth import AuthError
from registry.api.models import FieldError, Problem
from registry.port import StoreUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(
        self, status: int, title: str, detail: str | None = None,
        errors: list[FieldError] | None = None, *, close: bool = False,
    ) -> None:
        super().__init__(detail or title)
        self.close = close  # the body was not read to its end: close the connection
        self.problem = Problem(
            title=title, status=status, detail=detail, errors=errors or []
        )


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid request", message, [FieldError(field=field, message=message)])


def from_validation(exc: ValidationError, where: str) -> ApiError:
    errors = []
    for e in exc.errors(include_url=False):
        field = ".".join(str(p) for p in e["loc"] if not isinstance(p, int)) or where
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            message = f"unknown {where} field"
        elif e["type"] in ("literal_error", "enum"):
            message = f"{e['input']!r} is not allowed here (see the enum in the OpenAPI document)"
        errors.append(FieldError(field=field, message=message))
    return ApiError(400, "invalid request", f"invalid {where}", errors)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=problem.status,
        text=json.dumps(problem.model_dump(mode="json", exclude_none=True)),
        content_type="application/problem+json",
        headers=headers,
    )


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        response = problem_response(exc.problem)
        if exc.close:
            response.force_close()
        return response
    except ValidationError as exc:
        return problem_response(from_validation(exc, "query").problem)
    except AuthError as exc:
        return problem_response(
            Problem(title="unauthorized", status=401, detail=str(exc)),
            {"WWW-Authenticate": 'Bearer realm="oadr-vtn"'},
        )
    except StoreUnavailable as exc:  # disk full, database down: retryable, one line
        log.warning("store unavailable on %s %s: %s", request.method, request.path, exc)
        return problem_response(
            Problem(title="store unavailable", status=503, detail="retry later"),
            {"Retry-After": str(RETRY_AFTER_S)},
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(Problem(title=exc.reason, status=exc.status, detail=exc.text))
    except Exception:
        log.exception("side API failure on %s %s", request.method, request.path)
        return problem_response(Problem(title="internal error", status=500))
