"""One definition of a VEN's sweep shard, three implementations: registry.port.leases
(Python), the SQLite adapter's SQL and the Mongo adapter's regex. They must agree on
every id, or a VEN would be swept twice or never."""

from __future__ import annotations

import random
import re
import sqlite3
import uuid
from collections import Counter

from registry.mongo.leases import shard_filter, shard_pattern
from registry.port import Shard, shard_of
from registry.sqlite.liveness import shard_sql


def ids() -> list[str]:
    rng = random.Random(1)
    out = [str(uuid.uuid4()) for _ in range(300)]
    out += ["a", "0", "F", "x0", "0x", "ven-\u00e9", "zz", "ab", "AB", "g1", "1g",
            "\u00e90", "0\u00e9", "-", "ven-17", "a\nb"]
    alphabet = "0123456789abcdefABCDEFxyz-\u00e9"
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4)))
            for _ in range(300)]
    return out


def test_sql_regex_and_python_agree_on_every_id() -> None:
    every = ids()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE vens (ven_id TEXT)")
    db.executemany("INSERT INTO vens VALUES (?)", [(i,) for i in every])
    for n in (2, 3, 4, 6, 7):
        seen: Counter[str] = Counter()
        for k in range(n):
            where, values = shard_sql(Shard(k, n))
            in_sql = {r[0] for r in db.execute("SELECT ven_id FROM vens WHERE 1" + where,
                                               values)}
            pattern = re.compile(shard_pattern(Shard(k, n)))
            in_regex = {i for i in every if pattern.search(i)}
            expected = {i for i in every if shard_of(i, n) == k}
            assert in_sql == expected, (n, k, in_sql ^ expected)
            assert in_regex == expected, (n, k, in_regex ^ expected)
            seen.update(expected)
        assert set(seen.values()) == {1} and len(seen) == len(set(every))
    assert shard_filter(Shard(0, 1)) == {} and shard_filter(None) == {}


def test_uuids_spread_evenly() -> None:
    counts = Counter(shard_of(str(uuid.uuid4()), 3) for _ in range(30_000))
    assert min(counts.values()) > 9_000  # 10,000 each, give or take the noise


def test_a_node_holding_several_shards_reads_their_union() -> None:
    every = ids()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE vens (ven_id TEXT)")
    db.executemany("INSERT INTO vens VALUES (?)", [(i,) for i in every])
    held = Shard(4, 6, (0, 2))
    assert held.indices == (0, 2, 4)
    expected = {i for i in every if shard_of(i, 6) in (0, 2, 4)}
    where, values = shard_sql(held)
    assert {r[0] for r in db.execute("SELECT ven_id FROM vens WHERE 1" + where,
                                     values)} == expected
    pattern = re.compile(shard_pattern(held))
    assert {i for i in every if pattern.search(i)} == expected
    assert all(held.covers(i) for i in expected)
