"""/api/v1/vens/{ven_id}/reregister and /cancel-registration: the operator's VEN actions.

The OpenADR side does the work (it queues oadrRequestReregistration or
oadrCancelPartyRegistration in the VEN's outbox); the VTN hands those two functions in
at mount time (``ACTIONS``), so this module never imports the services. The VEN is
looked up in the caller's scope first: another tenant's VEN is a 404, a prosumer 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from registry.api.common import ApiError, json_response, principal_of, scope_of, store_of
from registry.api.openapi import Op


class ActionRefused(Exception):
    """The OpenADR side refuses the action (e.g. the VEN is not registered): a 409."""


@dataclass(frozen=True, slots=True)
class VenActions:
    """Each takes a venID; raises :class:`ActionRefused` when the action cannot be done."""

    reregister: Callable[[str], Awaitable[None]]
    cancel: Callable[[str], Awaitable[None]]


ACTIONS = web.AppKey("api.ven_actions", VenActions)


async def _act(request: web.Request, name: str) -> web.Response:
    principal = principal_of(request)
    if principal.role == "prosumer":
        raise ApiError(403, "forbidden", "a prosumer may not act on VENs")
    ven = await store_of(request).find_ven(request.match_info["ven_id"], scope_of(request))
    if ven is None:
        raise ApiError(404, "not found", "no such VEN")
    actions = request.app.get(ACTIONS)
    if actions is None:
        raise ApiError(501, "not implemented", "VEN actions are not available here")
    try:
        await getattr(actions, name)(ven.ven_id)
    except ActionRefused as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return json_response({"ven_id": ven.ven_id, "queued": name}, status=202)


async def reregister(request: web.Request) -> web.Response:
    return await _act(request, "reregister")


async def cancel(request: web.Request) -> web.Response:
    return await _act(request, "cancel")


def operations() -> list[Op]:
    ven = {"ven_id": "the venID"}
    return [
        Op("POST", "/v1/vens/{ven_id}/reregister", reregister, "Ask a VEN to re-register",
           path_params=ven, errors=(403, 404, 409), status=202,
           description="Queues oadrRequestReregistration for the VEN's next poll."),
        Op("POST", "/v1/vens/{ven_id}/cancel-registration", cancel,
           "Cancel a VEN's registration", path_params=ven, errors=(403, 404, 409), status=202,
           description="Queues oadrCancelPartyRegistration; the VEN is unregistered when "
           "it answers."),
    ]
