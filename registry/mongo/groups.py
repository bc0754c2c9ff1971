"""DER groups on MongoDB: records in ``der_groups`` (_id = group_id, unique (owner,
name)), static members in ``der_group_members`` (_id = "<group_id>/<device_id>").

Without transactions every write is one conditional single-document operation: a record
is inserted (a duplicate id or name is a Conflict) or replaced on its expected version.
A member page is one ``find`` on ``ders``: the owner's scope, the caller's, (filter or
included ids) minus excluded ids, keyset on ``_id`` (= device_id); a radius filter is
exact in Python as in discovery.
"""

from __future__ import annotations

from typing import Any

from pymongo import DeleteOne, ReplaceOne
from pymongo.errors import DuplicateKeyError

from registry.discovery import DerBrief, DiscoveryQuery
from registry.group_model import (
    Group,
    GroupMember,
    MemberKind,
    StaticMember,
    TallyRow,
    group_of_view,
    tally,
)
from registry.mongo.conn import Doc, MongoConn, Session
from registry.mongo.discovery import compile_filter, distance_of, within
from registry.mongo.docs import der_of
from registry.mongo.opts import opted_out
from registry.mongo.scope import and_, scope_filter
from registry.port import (
    SERVICE,
    Batch,
    Conflict,
    NameTaken,
    Scope,
    groups_in_scope,
    may_see,
    owner_scope,
)

INDEXES = {
    "der_groups": [("owner_name_unique", [("owner", 1), ("name", 1)], {"unique": True})],
    "der_group_members": [("group_kind", [("group_id", 1), ("kind", 1), ("device_id", 1)], {})],
}
# member pages of a tenant's group walk its DERs in device_id (= _id) order
# (registry.mongo.schema adds this to the ders indexes)
DER_INDEXES = [("aggregator_device", [("aggregator_id", 1), ("device_id", 1)], {})]
_MEMBER_FIELDS = {f: 1 for f in (
    "device_id", "ven_id", "resource_id", "aggregator_id", "device_type", "device_class",
    "liveness", "availability", "dr_availability", "max_capacity", "available_capacity",
    "location")}


def group_doc(g: Group) -> Doc:
    doc = g.model_dump(mode="json")
    doc.update(_id=g.group_id, owner=g.owner)
    return doc


def group_of(doc: Doc) -> Group:
    return Group.model_validate({k: v for k, v in doc.items() if k not in ("_id", "owner")})


async def migrate_views(c: MongoConn) -> int:
    """Move views saved before groups existed into ``der_groups`` (same id on every
    process; an upsert that only inserts), then delete each moved view."""
    moved = 0
    for view in await c.retry(lambda: c.col("views").find({}).to_list()):
        group = group_of_view(view)
        doc = group_doc(group)
        try:
            await c.retry(lambda d=doc: c.col("der_groups").update_one(
                {"_id": d["_id"]}, {"$setOnInsert": d}, upsert=True))
        except DuplicateKeyError:
            pass  # a group of that name exists already: it wins
        await c.retry(lambda v=view: c.col("views").delete_one({"_id": v["_id"]}))
        moved += 1
    return moved


async def list_groups(c: MongoConn, scope: Scope, aggregator_id: str | None) -> list[Group]:
    visible, owner = groups_in_scope(scope, aggregator_id)
    if not visible:
        return []
    flt = {} if owner is None else {"owner": owner}
    docs = await c.retry(lambda: c.col("der_groups").find(flt).sort(
        [("owner", 1), ("name", 1)]).to_list())
    return [group_of(d) for d in docs]


async def _one(c: MongoConn, flt: Doc, scope: Scope) -> Group | None:
    doc = await c.retry(lambda: c.col("der_groups").find_one(flt))
    group = group_of(doc) if doc else None
    return group if group is not None and may_see(scope, group) else None


async def get_group(c: MongoConn, group_id: str, scope: Scope) -> Group | None:
    return await _one(c, {"_id": group_id}, scope)


async def group_named(c: MongoConn, aggregator_id: str | None, name: str, scope: Scope
                      ) -> Group | None:
    return await _one(c, {"owner": aggregator_id or "", "name": name}, scope)


async def group_static(c: MongoConn, group_id: str, kind: MemberKind, after: str | None,
                       limit: int | None) -> list[str]:
    def find() -> Any:
        cur = c.col("der_group_members").find(
            {"group_id": group_id, "kind": kind.value, "device_id": {"$gt": after or ""}},
            {"device_id": 1}).sort("device_id", 1)
        return (cur.limit(limit) if limit else cur).to_list()
    return [d["device_id"] for d in await c.retry(find)]


async def member_filter(c: MongoConn, group: Group, scope: Scope, after: str | None
                        ) -> tuple[Doc, DiscoveryQuery | None]:
    """The ``ders`` filter of the group's members after ``after`` as the caller sees
    them, and the discovery query (for the exact radius check) or None."""
    query = None if group.filters is None else DiscoveryQuery.model_validate(group.filters)
    include = await group_static(c, group.group_id, MemberKind.INCLUDE, after, None)
    exclude = await group_static(c, group.group_id, MemberKind.EXCLUDE, after, None)
    parts: list[Doc] = [scope_filter(owner_scope(group)), scope_filter(scope)]
    by_id: Doc = {"_id": {"$in": include}}
    if query is None:
        parts.append(by_id)
    else:
        dynamic = compile_filter(query, SERVICE)
        if query.available_at is not None:
            dynamic = and_([dynamic, await opted_out(c, query.available_at)])
        if include:
            parts.append({"$or": [dynamic, by_id]} if dynamic else {})
        else:
            parts.append(dynamic)
    if exclude:
        parts.append({"_id": {"$nin": exclude}})
    if after:
        parts.append({"device_id": {"$gt": after}})
    return and_(parts) or {}, query


async def group_page(c: MongoConn, group: Group, scope: Scope, after: str | None,
                     limit: int) -> list[GroupMember]:
    flt, query = await member_filter(c, group, scope, after)
    include: set[str] = set()
    near = query.near if query is not None and query.near is not None else None
    if near is not None:
        include = set(await group_static(c, group.group_id, MemberKind.INCLUDE, after, None))
    out: list[GroupMember] = []
    cursor = c.col("ders").find(flt, _MEMBER_FIELDS).sort("device_id", 1)
    if near is None:
        cursor = cursor.limit(limit)
    try:
        async for d in cursor:
            if near is not None and d["_id"] not in include and not within(
                    distance_of(d, near), query.radius_m or 0.0):  # type: ignore[union-attr]
                continue
            out.append(GroupMember(
                d["device_id"], d["ven_id"], d["resource_id"], d.get("aggregator_id"),
                d["device_type"], d["device_class"], d["liveness"],
                bool(d.get("availability")), bool(d.get("dr_availability")),
                d.get("max_capacity"), d.get("available_capacity")))
            if len(out) >= limit:
                break
    finally:
        await cursor.close()
    return out


async def group_tally(c: MongoConn, group: Group, scope: Scope, in_event: set[str],
                      opted_vens: set[str], opted_devices: set[str]) -> list[TallyRow]:
    """One pass over the member pages in Python (nx-27017 has no $group to rely on)."""
    rows: list[GroupMember] = []
    after = None
    while True:
        page = await group_page(c, group, scope, after, 5000)
        rows += page
        if len(page) < 5000:
            return tally(rows, in_event, opted_vens, opted_devices)
        after = page[-1].device_id


async def group_briefs(c: MongoConn, group: Group, scope: Scope) -> list[DerBrief]:
    flt, query = await member_filter(c, group, scope, None)
    near = query.near if query is not None and query.near is not None else None
    include = set(await group_static(c, group.group_id, MemberKind.INCLUDE, None, None)
                  ) if near is not None else set()
    out: list[DerBrief] = []
    cursor = c.col("ders").find(flt).sort("device_id", 1).batch_size(1000)
    try:
        async for d in cursor:
            if near is not None and d["_id"] not in include and not within(
                    distance_of(d, near), query.radius_m or 0.0):  # type: ignore[union-attr]
                continue
            out.append(DerBrief.of(der_of(d)))
    finally:
        await cursor.close()
    return out


async def visible_device_ids(c: MongoConn, device_ids: list[str], scope: Scope) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(device_ids), 10_000):
        chunk = device_ids[i:i + 10_000]
        docs = await c.retry(lambda ch=chunk: c.col("ders").find(
            and_([scope_filter(scope), {"_id": {"$in": ch}}]), {"_id": 1}).to_list())
        found.update(d["_id"] for d in docs)
    return found


# --- inside Store.commit ---------------------------------------------------------------


async def write_groups(c: MongoConn, batch: Batch, s: Session) -> None:
    """Records (conditional on their version), deletions, then static members."""
    col = c.col("der_groups")
    for group, expected in batch.groups:
        doc = group_doc(group)
        try:
            if expected is None:
                await c.do(s, lambda d=doc: col.insert_one(d, session=s))
                continue
            res = await c.do(s, lambda d=doc, e=expected: col.replace_one(
                {"_id": d["_id"], "version": e}, d, session=s))
        except (DuplicateKeyError, Conflict) as exc:  # E11000 (retry() makes it a Conflict):
            # the id (a re-run create) or the name is taken
            if expected is None and await c.retry(lambda d=doc: c.col("der_groups").find_one(
                    {"_id": d["_id"]}, {"_id": 1})):
                raise Conflict(f"group {group.group_id} exists") from exc
            raise NameTaken(f"a group named {group.name!r} exists") from exc
        if res.matched_count != 1:
            raise Conflict(f"group {group.group_id} changed meanwhile")
    members = c.col("der_group_members")
    for group_id, expected in batch.delete_groups:
        flt: Doc = {"_id": group_id}
        if expected is not None:
            flt["version"] = expected
        res = await c.do(s, lambda f=flt: col.delete_one(f, session=s))
        if expected is not None and res.deleted_count != 1:
            raise Conflict(f"group {group_id} changed meanwhile")
        await c.do(s, lambda g=group_id: members.delete_many({"group_id": g}, session=s))
    ops: list[Any] = []
    for group_id, device_id, kind in batch.group_members:
        _id = f"{group_id}/{device_id}"
        if kind is None:
            ops.append(DeleteOne({"_id": _id}))
        else:
            ops.append(ReplaceOne({"_id": _id}, {"_id": _id, "group_id": group_id,
                                                 "device_id": device_id, "kind": kind.value},
                                  upsert=True))
    if ops:
        await c.bulk(s, "der_group_members", ops)


# --- export / import (registry.mongo.transfer) -------------------------------------------


def static_of(doc: Doc) -> StaticMember:
    return StaticMember(group_id=doc["group_id"], device_id=doc["device_id"], kind=doc["kind"])


def import_ops(kind: str, records: list[Any]) -> tuple[str, list[Any]]:
    if kind == "group":
        return "der_groups", [ReplaceOne({"_id": r.group_id}, group_doc(r), upsert=True)
                              for r in records]
    return "der_group_members", [ReplaceOne(
        {"_id": f"{r.group_id}/{r.device_id}"},
        {"_id": f"{r.group_id}/{r.device_id}", "group_id": r.group_id,
         "device_id": r.device_id, "kind": r.kind.value}, upsert=True) for r in records]
