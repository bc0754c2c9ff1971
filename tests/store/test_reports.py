"""Report specs and report requests.

Each test runs against both backends (the ``open_store`` fixture of conftest.py).
"""

from __future__ import annotations

from registry.models import ReportRequestState
from registry.port import Batch, Store
from tests.store.support import request, spec, ven


async def test_report_specs_are_replaced_per_ven(store: Store) -> None:
    v, w = ven("a"), ven("b")
    await store.commit(Batch(vens=[v, w], report_specs=[spec(v.ven_id, "s1"), spec(v.ven_id, "s2"),
                                                        spec(w.ven_id, "s1")]))
    await store.commit(
        Batch(replace_report_specs_of=[v.ven_id], report_specs=[spec(v.ven_id, "s3")])
    )
    assert [s.report_specifier_id for s in await store.report_specs_of_ven(v.ven_id)] == ["s3"]
    assert await store.report_specs_of_ven(w.ven_id) == [spec(w.ven_id, "s1")]


async def test_report_request_states_and_cancel_all(store: Store) -> None:
    v, w = ven("a"), ven("b")
    await store.commit(Batch(vens=[v, w], report_requests=[
        request(v.ven_id, "rr1"), request(v.ven_id, "rr2"), request(w.ven_id, "rr1")]))
    await store.commit(Batch(report_request_states=[(v.ven_id, "rr1", ReportRequestState.ACTIVE)]))
    got = await store.get_report_request(v.ven_id, "rr1")
    assert got is not None and got.state == "active"
    assert [r.report_request_id for r in await store.report_requests_of_ven(v.ven_id)] == [
        "rr1", "rr2"]
    await store.commit(Batch(cancel_report_requests_of=[v.ven_id],
                             report_requests=[request(v.ven_id, "rr3")]))
    states = {r.report_request_id: r.state.value
              for r in await store.report_requests_of_ven(v.ven_id)}
    assert states == {"rr1": "cancelled", "rr2": "cancelled", "rr3": "pending"}
    other = await store.get_report_request(w.ven_id, "rr1")
    assert other is not None and other.state == "pending"
    assert await store.get_report_request(v.ven_id, "nope") is None
