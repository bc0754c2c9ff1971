"""Server-Sent Events over the event log: poll the store with the caller's scope.

Polling (every ``POLL_S``) works the same with several VTN processes sharing one store,
which an in-process commit hook would not. Streams end on client disconnect and on app
shutdown (the ``STOP`` event), so a server can always stop promptly.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from registry.api.errors import invalid
from registry.api.models import LogQuery
from registry.models import LogEntry

STOP = web.AppKey("api.sse_stop", asyncio.Event)
POLL_S = 0.5
KEEPALIVE_S = 15.0


def frame(entry: LogEntry) -> bytes:
    data = entry.model_dump_json()
    return f"id: {entry.seq}\nevent: {entry.kind}\ndata: {data}\n\n".encode()


async def stream_events(request: web.Request) -> web.StreamResponse:
    from registry.api.routes import parse_query, principal_of, store_of

    query = parse_query(LogQuery, request)
    last_id = request.headers.get("Last-Event-ID")
    after = query.after
    if last_id is not None:
        if not last_id.strip().isdigit():
            raise invalid("Last-Event-ID", "must be a sequence number")
        after = int(last_id)
    scope, store, stop = principal_of(request).scope, store_of(request), request.app[STOP]
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                 "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    last_write = time.monotonic()
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
            try:
                await asyncio.wait_for(stop.wait(), POLL_S)
            except TimeoutError:
                pass
    except ConnectionResetError:  # the client went away
        pass
    return resp

