"""Export and import a whole store as JSON lines, between any two adapters.

One object per line: ``{"type": KIND, "doc": {...}}`` with KIND one of ven, der,
report_spec, report_request, group, group_member, report_subscription, event, event_delivery,
opt_schedule, dispatch, dispatch_member, outbox, log, in that order (VENs before their DERs,
events before their deliveries and the group dispatches that sent them, the log last); a
``view`` line of a dump written before groups is read as the group it became, and a dump
written before dispatches simply has none. Export streams through ``Store.iter_all``;
import reads line by line and writes in chunks, so neither holds the registry in memory.

Import is idempotent: records are upserted by their natural keys (venID; venID+resourceID;
venID+reportSpecifierID; venID+reportRequestID; eventID; eventID+venID; venID+optID;
dispatch_id; dispatch_id+device_id; a dispatch keeps its rev, so the re-dispatch job's
conditional writes go on from it), log entries keep their seq and entries
already present are skipped. On MongoDB (``import_records``) every record is restored
exactly, outbox seqs included. Through the generic port (SQLite) a DER already present
and equal is skipped (re-upserting would bump its version); the log is imported as the
continuation of the target's log (the seq must come out the same, else TransferError);
outbox messages of a VEN are imported only if it has none pending, keeping their FIFO
order but renumbered by the target.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from pydantic import BaseModel

from registry.events import DrEvent, EventDelivery, OptSchedule
from registry.group_dispatch import DispatchMember, GroupDispatch
from registry.group_model import Group, StaticMember, group_of_view
from registry.models import (
    Der,
    LogEntry,
    OutboxMessage,
    ReportRequestRecord,
    ReportSpec,
    ReportSubscription,
    Ven,
)
from registry.port import SERVICE, Batch, Store, StoreError
from registry.port.delivery import target_of

KINDS: dict[str, type[BaseModel]] = {
    "ven": Ven,
    "der": Der,
    "report_spec": ReportSpec,
    "report_request": ReportRequestRecord,
    "group": Group,
    "group_member": StaticMember,
    "report_subscription": ReportSubscription,
    "event": DrEvent,
    "event_delivery": EventDelivery,
    "opt_schedule": OptSchedule,
    "dispatch": GroupDispatch,
    "dispatch_member": DispatchMember,
    "outbox": OutboxMessage,
    "log": LogEntry,
}
CHUNK = 1000


class TransferError(StoreError):
    """The dump cannot be applied to this store as it is."""


async def export_store(store: Store, out: TextIO) -> dict[str, int]:
    """Write every record as one JSON line; returns the count per kind."""
    counts: dict[str, int] = {}
    for kind in KINDS:
        n = 0
        async for record in store.iter_all(kind):
            out.write(json.dumps({"type": kind, "doc": record.model_dump(mode="json")}))
            out.write("\n")
            n += 1
        counts[kind] = n
    return counts


async def import_store(store: Store, lines: Iterable[str]) -> dict[str, int]:
    """Apply a dump; returns how many records of each kind were read."""
    importer = _Importer(store)
    kind, chunk = "", []
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("type") == "view":  # a dump from before groups
            item = {"type": "group", "doc": group_of_view(item["doc"]).model_dump(mode="json")}
        if item["type"] not in KINDS:
            raise TransferError(f"unknown record type {item['type']!r}")
        if item["type"] != kind or len(chunk) >= CHUNK:
            await importer.apply(kind, chunk)
            kind, chunk = item["type"], []
        chunk.append(KINDS[kind].model_validate(item["doc"]))
    await importer.apply(kind, chunk)
    return importer.counts


class _Importer:
    """Writes chunks of one kind, exactly (adapter bulk path) or through the port."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.exact = getattr(store, "import_records", None)
        self.counts: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.outbox_decided: dict[str, bool] = {}
        self.log_last: int | None = None

    async def apply(self, kind: str, chunk: list[Any]) -> None:
        if not chunk:
            return
        self.counts[kind] += len(chunk)
        if self.exact is not None:
            await self.exact(kind, chunk)
            return
        await getattr(self, f"_{kind}")(chunk)

    async def _ven(self, chunk: list[Ven]) -> None:
        # push / XMPP VENs: their delivery targets follow from the stored transport
        targets = [t for t in map(target_of, chunk) if t is not None]
        await self.store.commit(Batch(vens=chunk, delivery_targets=targets))

    async def _der(self, chunk: list[Der]) -> None:
        existing: dict[tuple[str, str], Der] = {}
        for ven_id in {d.ven_id for d in chunk}:
            for d in await self.store.ders_of_ven(ven_id):
                existing[(d.ven_id, d.resource_id)] = d
        todo = [d for d in chunk if existing.get((d.ven_id, d.resource_id)) != d]
        if todo:
            await self.store.commit(Batch(ders=todo))

    async def _report_spec(self, chunk: list[ReportSpec]) -> None:
        await self.store.commit(Batch(report_specs=chunk))

    async def _report_request(self, chunk: list[ReportRequestRecord]) -> None:
        await self.store.commit(Batch(report_requests=chunk))

    async def _group(self, chunk: list[Group]) -> None:
        todo = []
        for group in chunk:
            old = await self.store.get_group(group.group_id, SERVICE)
            if old != group:
                todo.append((group, old.version if old else None))
        if todo:
            await self.store.commit(Batch(groups=todo))

    async def _group_member(self, chunk: list[StaticMember]) -> None:
        await self.store.commit(Batch(group_members=[
            (m.group_id, m.device_id, m.kind) for m in chunk]))

    async def _report_subscription(self, chunk: list[ReportSubscription]) -> None:
        await self.store.commit(Batch(subscriptions=chunk))

    async def _event(self, chunk: list[DrEvent]) -> None:
        await self.store.commit(Batch(events=chunk))

    async def _event_delivery(self, chunk: list[EventDelivery]) -> None:
        await self.store.commit(Batch(deliveries=chunk))

    async def _opt_schedule(self, chunk: list[OptSchedule]) -> None:
        await self.store.commit(Batch(opts=chunk))

    async def _dispatch(self, chunk: list[GroupDispatch]) -> None:
        # no dispatch_expect: an unconditional upsert, rev as dumped
        await self.store.commit(Batch(dispatches=chunk))

    async def _dispatch_member(self, chunk: list[DispatchMember]) -> None:
        await self.store.commit(Batch(dispatch_members=chunk))

    async def _outbox(self, chunk: list[OutboxMessage]) -> None:
        todo = []
        for message in chunk:
            ven_id = message.ven_id
            if ven_id not in self.outbox_decided:  # a VEN's queue is taken whole or not at all
                self.outbox_decided[ven_id] = await self.store.pending_count(ven_id) == 0
            if self.outbox_decided[ven_id]:
                todo.append(message.model_copy(update={"seq": None}))
        if todo:
            await self.store.commit(Batch(outbox=todo))

    async def _log(self, chunk: list[LogEntry]) -> None:
        if self.log_last is None:
            self.log_last = await self.store.last_seq()
        await self._check_present([e for e in chunk if (e.seq or 0) <= self.log_last])
        todo = [e for e in chunk if (e.seq or 0) > self.log_last]
        if not todo:
            return
        written = await self.store.commit(Batch(log=[e.model_copy(update={"seq": None})
                                                     for e in todo]))
        got, wanted = [e.seq for e in written], [e.seq for e in todo]
        if got != wanted:
            raise TransferError(
                f"log seq {wanted[0]}.. came out as {got[0]}..: the target's log does not "
                "continue the dump's (import the log into an empty store)"
            )
        self.log_last = wanted[-1]

    async def _check_present(self, entries: list[LogEntry]) -> None:
        """Entries the target already has must be these very entries (a re-import)."""
        if not entries:
            return
        first = entries[0].seq or 0
        have = {e.seq: e for e in await self.store.read_log(after=first - 1, limit=len(entries))}
        for e in entries:
            if have.get(e.seq) != e:
                raise TransferError(
                    f"log entry {e.seq} differs from the target's: the target's log does not "
                    "continue the dump's (import the log into an empty store)"
                )
