"""DER groups on SQLite: records in ``der_groups`` (one JSON document each, unique per
(owner, name)), static members in ``der_group_members`` (include / exclude per device),
member pages compiled to one SQL statement with the owner's scope and the caller's."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from registry.discovery import DerBrief, DiscoveryQuery
from registry.group_model import Group, GroupMember, MemberKind, TallyRow, group_of_view
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
from registry.sqlite.discovery import BRIEF_COLUMNS, compile_where
from registry.sqlite.scope import scope_where

GROUPS_SCHEMA = """
CREATE TABLE IF NOT EXISTS der_groups (
    group_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,  -- aggregator_id, '' for the service
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (owner, name)
);
CREATE TABLE IF NOT EXISTS der_group_members (
    group_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,  -- include | exclude
    PRIMARY KEY (group_id, device_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS der_group_members_kind ON der_group_members(group_id, kind, device_id);
-- member pages of a tenant's group walk its DERs in device_id order: no sort per page
CREATE INDEX IF NOT EXISTS ders_aggregator_device ON ders(aggregator_id, device_id);
"""

_MEMBER_COLUMNS = (
    "device_id, ven_id, resource_id, aggregator_id, device_type, device_class, liveness, "
    "availability, dr_availability, max_capacity, available_capacity"
)

_QUALIFIED = ", ".join(f"ders.{c.strip()}" for c in _MEMBER_COLUMNS.split(","))


def migrate_views(db: sqlite3.Connection) -> int:
    """Copy views saved before groups existed into ``der_groups`` (same id on every
    process, so racing openers agree) and drop them from ``views``; inside the caller's
    transaction. Returns how many were moved."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='views'"
                  ).fetchone() is None:
        return 0
    rows = db.execute("SELECT doc FROM views").fetchall()
    for (doc,) in rows:
        view = json.loads(doc)
        group = group_of_view(view)
        db.execute("INSERT OR IGNORE INTO der_groups VALUES (?, ?, ?, ?, ?)",
                   (group.group_id, group.owner, group.name, 1, group.model_dump_json()))
    db.execute("DELETE FROM views")
    return len(rows)


def _of(rows: list[tuple[str]]) -> list[Group]:
    return [Group.model_validate_json(r[0]) for r in rows]


def list_groups(db: sqlite3.Connection, scope: Scope, aggregator_id: str | None
                ) -> list[Group]:
    visible, owner = groups_in_scope(scope, aggregator_id)
    if not visible:
        return []
    if owner is None:
        rows = db.execute("SELECT doc FROM der_groups ORDER BY owner, name")
    else:
        rows = db.execute("SELECT doc FROM der_groups WHERE owner=? ORDER BY name", (owner,))
    return _of(rows.fetchall())


def get_group(db: sqlite3.Connection, group_id: str, scope: Scope) -> Group | None:
    found = _of(db.execute("SELECT doc FROM der_groups WHERE group_id=?",
                           (group_id,)).fetchall())
    return found[0] if found and may_see(scope, found[0]) else None


def group_named(db: sqlite3.Connection, aggregator_id: str | None, name: str, scope: Scope
                ) -> Group | None:
    found = _of(db.execute("SELECT doc FROM der_groups WHERE owner=? AND name=?",
                           (aggregator_id or "", name)).fetchall())
    return found[0] if found and may_see(scope, found[0]) else None


def group_static(db: sqlite3.Connection, group_id: str, kind: MemberKind, after: str | None,
                 limit: int) -> list[str]:
    rows = db.execute(
        "SELECT device_id FROM der_group_members WHERE group_id=? AND kind=? AND device_id>? "
        "ORDER BY device_id LIMIT ?", (group_id, kind.value, after or "", limit))
    return [r[0] for r in rows]


def member_where(group: Group, scope: Scope) -> tuple[str, list[Any]]:
    """The condition on ``ders`` of the group's members as the caller may see them."""
    own, own_params = scope_where(owner_scope(group))
    mine, my_params = scope_where(scope)
    if group.filters is None:
        dynamic, dyn_params = "0=1", []
    else:
        sql = compile_where(DiscoveryQuery.model_validate(group.filters), SERVICE)
        dynamic, dyn_params = sql.where, sql.params
    text = (
        f"({own}) AND ({mine}) AND (({dynamic}) OR ders.device_id IN (SELECT device_id FROM "
        "der_group_members WHERE group_id=? AND kind='include')) AND ders.device_id NOT IN "
        "(SELECT device_id FROM der_group_members WHERE group_id=? AND kind='exclude')"
    )
    return text, [*own_params, *my_params, *dyn_params, group.group_id, group.group_id]


def _source(group: Group, scope: Scope) -> tuple[str, list[Any]]:
    """``FROM ... WHERE ...`` of the members: a static group walks its includes, any
    other its owner's DERs (in device_id order on the ders_aggregator_device index)."""
    if group.filters is None:
        own, own_params = scope_where(owner_scope(group))
        mine, my_params = scope_where(scope)
        return (
            "FROM der_group_members m JOIN ders ON ders.device_id=m.device_id "
            f"WHERE m.group_id=? AND m.kind='include' AND ({own}) AND ({mine})",
            [group.group_id, *own_params, *my_params])
    where, params = member_where(group, scope)
    return f"FROM ders WHERE {where}", params


def group_page(db: sqlite3.Connection, group: Group, scope: Scope, after: str | None,
               limit: int) -> list[GroupMember]:
    source, params = _source(group, scope)
    rows = db.execute(
        f"SELECT {_QUALIFIED} {source} AND ders.device_id>? ORDER BY ders.device_id LIMIT ?",
        (*params, after or "", limit))
    return [GroupMember(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), bool(r[8]),
                        r[9], r[10]) for r in rows]


def group_tally(db: sqlite3.Connection, group: Group, scope: Scope, in_event: set[str],
                opted_vens: set[str], opted_devices: set[str]) -> list[TallyRow]:
    source, params = _source(group, scope)
    ids = "(SELECT value FROM json_each(?))"
    rows = db.execute(
        "SELECT ders.device_type, ders.device_class, ders.liveness, "
        "ders.availability AND ders.dr_availability, count(*), total(ders.max_capacity), "
        f"total(ders.available_capacity), total(ders.device_id IN {ids}), "
        f"total(ders.ven_id IN {ids} OR ders.device_id IN {ids}) "
        f"{source} GROUP BY 1, 2, 3, 4",
        (json.dumps(sorted(in_event)), json.dumps(sorted(opted_vens)),
         json.dumps(sorted(opted_devices)), *params))
    return [TallyRow(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6], int(r[7]), int(r[8]))
            for r in rows]


def group_briefs(db: sqlite3.Connection, group: Group, scope: Scope) -> list[DerBrief]:
    where, params = member_where(group, scope)
    loads = json.loads
    return [
        DerBrief(r[0], r[1], r[2], r[3], r[4], loads(r[5]) or {}, r[6], r[7], r[8], r[9])
        for r in db.execute(f"SELECT {BRIEF_COLUMNS} FROM ders WHERE {where} "
                            "ORDER BY ders.device_id", params)
    ]


def visible_device_ids(db: sqlite3.Connection, device_ids: list[str], scope: Scope
                       ) -> set[str]:
    where, params = scope_where(scope)
    found: set[str] = set()
    for i in range(0, len(device_ids), 10_000):
        chunk = json.dumps(device_ids[i:i + 10_000])
        found.update(r[0] for r in db.execute(
            "SELECT device_id FROM ders WHERE device_id IN (SELECT value FROM json_each(?)) "
            f"AND {where}", (chunk, *params)))
    return found


# --- inside Store.commit's transaction ------------------------------------------------


def write_groups(db: sqlite3.Connection, batch: Batch) -> None:
    """Records (conditional on their version), deletions, then static members."""
    for group, expected in batch.groups:
        row = db.execute("SELECT version FROM der_groups WHERE group_id=?",
                         (group.group_id,)).fetchone()
        if (row[0] if row else None) != expected:
            raise Conflict(f"group {group.group_id} changed meanwhile")
        clash = db.execute("SELECT group_id FROM der_groups WHERE owner=? AND name=?",
                           (group.owner, group.name)).fetchone()
        if clash is not None and clash[0] != group.group_id:
            raise NameTaken(f"a group named {group.name!r} exists")
        db.execute(
            "INSERT INTO der_groups VALUES (?, ?, ?, ?, ?) ON CONFLICT(group_id) DO UPDATE "
            "SET owner=excluded.owner, name=excluded.name, version=excluded.version, "
            "doc=excluded.doc",
            (group.group_id, group.owner, group.name, group.version, group.model_dump_json()))
    for group_id, expected in batch.delete_groups:
        row = db.execute("SELECT version FROM der_groups WHERE group_id=?",
                         (group_id,)).fetchone()
        if expected is not None and (row[0] if row else None) != expected:
            raise Conflict(f"group {group_id} changed meanwhile")
        db.execute("DELETE FROM der_groups WHERE group_id=?", (group_id,))
        db.execute("DELETE FROM der_group_members WHERE group_id=?", (group_id,))
    put = [(g, d, k.value) for g, d, k in batch.group_members if k is not None]
    drop = [(g, d) for g, d, k in batch.group_members if k is None]
    if put:
        db.executemany("INSERT OR REPLACE INTO der_group_members VALUES (?, ?, ?)", put)
    if drop:
        db.executemany("DELETE FROM der_group_members WHERE group_id=? AND device_id=?", drop)
