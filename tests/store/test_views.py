"""Report subscriptions and metadata announcements (discovery over OpenADR; views are
DER groups now: tests/store/test_groups.py).

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from registry.models import LogEntry, OutboxMessage
from registry.port import Batch, Conflict, Store
from tests.store.support import T0, Opener, subscription, ven


async def test_vens_with_role(store: Store) -> None:
    agg = ven("agg-1", role="aggregator", aggregator_id="A1")
    await store.commit(Batch(vens=[agg, ven("osb-1")]))
    assert [v.ven_name for v in await store.vens_with_role("aggregator")] == ["agg-1"]


async def test_due_reports_are_claimed_once_by_racing_processes(open_store: Opener) -> None:
    a, b = await open_store(), await open_store()
    subs = [subscription("agg", f"rr-{i}") for i in range(20)]
    subs.append(subscription("agg", "once", report_back_duration_s=0))
    subs.append(subscription("agg", "later", next_due_at=T0 + timedelta(hours=1)))
    await a.commit(Batch(subscriptions=subs))
    got = await asyncio.gather(*(s.claim_due_reports(T0, limit=5) for s in (a, b, a, b) * 3))
    claimed = [c.report_request_id for batch in got for c in batch]
    assert len(claimed) == len(set(claimed))  # racing claims never take one twice
    while batch := await (a if len(claimed) % 2 else b).claim_due_reports(T0, limit=5):
        claimed += [c.report_request_id for c in batch]
    assert sorted(claimed) == sorted([f"rr-{i}" for i in range(20)] + ["once"])  # each once
    assert await a.claim_due_reports(T0 + timedelta(seconds=59)) == []
    again = await b.claim_due_reports(T0 + timedelta(seconds=60), limit=100)
    assert len(again) == 20 and all(s.deliveries == 2 for s in again)
    by_id = {s.report_request_id: s for s in await a.subscriptions_of_ven("agg")}
    assert by_id["once"].state == "done" and by_id["once"].next_due_at is None
    assert by_id["rr-0"].next_due_at == T0 + timedelta(seconds=120)
    assert [s.report_request_id for s in await a.subscriptions_of_ven("agg")][:2] == [
        "rr-0", "rr-1"]  # in the order they were stored


async def test_subscription_states_and_cancel_all_of_a_ven(store: Store) -> None:
    from registry.models import SubscriptionState

    await store.commit(Batch(subscriptions=[subscription("agg", "a"), subscription("agg", "b"),
                                            subscription("other", "c")]))
    await store.commit(Batch(subscription_states=[("agg", "a", SubscriptionState.CANCELLED)]))
    await store.commit(Batch(cancel_subscriptions_of=["agg"],
                             subscriptions=[subscription("agg", "d")]))  # new ones survive
    states = {s.report_request_id: s.state for s in await store.subscriptions_of_ven("agg")}
    assert states == {"a": "cancelled", "b": "cancelled", "d": "active"}
    due = await store.claim_due_reports(T0)
    assert sorted(s.report_request_id for s in due) == ["c", "d"]


async def test_announcement_is_conditional_and_a_stale_one_writes_nothing(
    store: Store
) -> None:
    from registry.port import ANY

    agg = ven("agg-1")
    msg = OutboxMessage(ven_id=agg.ven_id, kind="oadrRegisterReport", body="<x/>")
    await store.commit(Batch(vens=[agg], announce=[(agg.ven_id, None, "h1")]))
    assert await store.announced_hash(agg.ven_id) == "h1"
    with pytest.raises(Conflict):  # someone announced h1 already: expecting None is stale
        await store.commit(Batch(announce=[(agg.ven_id, None, "h2")], outbox=[msg]))
    with pytest.raises(Conflict):
        await store.commit(Batch(announce=[(agg.ven_id, "h0", "h2")], outbox=[msg],
                                 log=[LogEntry(kind="views.announced")]))
    assert await store.pending_count(agg.ven_id) == 0  # nothing half-written
    assert await store.announced_hash(agg.ven_id) == "h1"
    await store.commit(Batch(announce=[(agg.ven_id, "h1", "h2")], outbox=[msg]))
    await store.commit(Batch(announce=[(agg.ven_id, ANY, "h3")]))
    assert await store.announced_hash(agg.ven_id) == "h3"
    assert await store.pending_count(agg.ven_id) == 1
