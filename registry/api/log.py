"""/api/v1/log: the change log, as pages and as Server-Sent Events (/api/v1/log/stream).

(Until issue #14 these were /api/v1/events and /api/v1/events/stream; that path now
belongs to demand-response events, registry.api.events.)

The stream reads the store with the caller's scope whenever the log may have moved: on
MongoDB with change streams (a replica set) the store's watch wakes it (``wait_log``),
elsewhere it reads every ``POLL_S``. Both work the same with several VTN processes
sharing one store, which an in-process commit hook would not.
Streams end on client disconnect and on app shutdown (the ``STOP`` event), so a server
can always stop promptly.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from multidict import MultiDict

from registry.api.common import invalid, json_response, parse_query, scope_of, store_of
from registry.api.models import LogList, LogQuery
from registry.api.openapi import Op
from registry.limits import MAX_INT64
from registry.models import LogEntry
from registry.port import StoreUnavailable

log = logging.getLogger(__name__)
STOP = web.AppKey("api.sse_stop", asyncio.Event)
POLL_S = 0.5
KEEPALIVE_S = 15.0
SEQ = re.compile("[0-9]{1,19}")


async def list_log(request: web.Request) -> web.Response:
    query = parse_query(LogQuery, request)
    entries = await store_of(request).find_log(query, scope_of(request))
    last = entries[-1].seq or query.after if entries else query.after
    headers = {}
    if len(entries) == query.limit:
        q = MultiDict(request.query)
        q["after"] = str(last)
        headers["Link"] = f'<{request.url.with_query(q)}>; rel="next"'
    return json_response(
        {"items": [e.model_dump(mode="json") for e in entries], "last_seq": last},
        headers=headers,
    )


def frame(entry: LogEntry) -> bytes:
    data = entry.model_dump_json()
    return f"id: {entry.seq}\nevent: {entry.kind}\ndata: {data}\n\n".encode()


async def stream_log(request: web.Request) -> web.StreamResponse:
    query = parse_query(LogQuery, request)
    last_id = request.headers.get("Last-Event-ID")
    after = query.after
    if last_id is not None:
        if not SEQ.fullmatch(last_id.strip()) or int(last_id) > MAX_INT64:
            raise invalid("Last-Event-ID", "must be a sequence number")  # before the stream
        after = int(last_id)
    scope, store, stop = scope_of(request), store_of(request), request.app[STOP]
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                 "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    last_write = time.monotonic()
    seen = 0  # what wait_log returned last (a wake-up token, not a scoped seq)
    try:
        await resp.write(b"retry: 2000\n\n")
        while not stop.is_set():
            entries = await store.find_log(query.model_copy(update={"after": after}), scope)
            for entry in entries:
                await resp.write(frame(entry))
                after = entry.seq or after
            if entries:
                last_write = time.monotonic()
            if len(entries) == query.limit:
                continue  # catching up: no pause
            if request.transport is None or request.transport.is_closing():
                break
            if time.monotonic() - last_write >= KEEPALIVE_S:
                await resp.write(b": keep-alive\n\n")
                last_write = time.monotonic()
            seen = await _wait(store.wait_log(seen, POLL_S), stop, seen)
    except ConnectionResetError:  # the client went away
        pass
    except StoreUnavailable as exc:  # already streaming: end it, the client reconnects
        log.warning("event stream ended, store unavailable: %s", exc)
    return resp


async def _wait(moved: Coroutine[Any, Any, int], stop: asyncio.Event, seen: int) -> int:
    """Until the log may have moved or the app stops, whichever comes first."""
    waiter = asyncio.ensure_future(moved)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not waiter.done():
            waiter.cancel()
    return waiter.result() if waiter.done() and not waiter.cancelled() else seen


def operations() -> list[Op]:
    return [
        Op("GET", "/v1/log", list_log, "Change log", query=LogQuery, response=LogList),
        Op("GET", "/v1/log/stream", stream_log, "Change log as Server-Sent Events",
           query=LogQuery, sse=True,
           description="Each event has id = seq and event = kind; reconnect with "
           "Last-Event-ID to resume. Comments (': keep-alive') keep idle streams open."),
    ]
