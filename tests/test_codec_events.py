"""oadrDistributeEvent with events: XSD-valid, round-trips, and openleadr's own parser
reads what a VEN needs from it (ids, status, signals, targets, response required)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from openleadr.messaging import parse_message

from vtn.codec import decode, encode, validate
from vtn.codec import messages as m

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _event(event_id: str = "ev-1", **kw: object) -> m.Event:
    base: dict[str, object] = dict(
        event_id=event_id,
        modification_number=2,
        market_context="http://market.example/dr",
        created_date_time=NOW,
        event_status="far",
        dtstart=NOW + timedelta(hours=1),
        duration=timedelta(hours=2),
        signals=[
            m.EventSignal("SIMPLE", "level", "sig-0", [
                m.SignalInterval(timedelta(hours=1), 1.0, "0"),
                m.SignalInterval(timedelta(hours=1), 2.0, "1"),
            ], current_value=0.0),
            m.EventSignal(
                "LOAD_DISPATCH", "delta", "sig-1",
                [m.SignalInterval(timedelta(hours=2), -1500.0)],
                item_base=m.ItemBase("powerReal", "RealPower", "W", hertz=50.0, voltage=230.0,
                                     ac=True),
                target=m.EventTarget(resource_ids=["dev-1"]),
            ),
        ],
        target=m.EventTarget(resource_ids=["dev-1", "dev-2"], ven_ids=["ven-1"]),
    )
    base.update(kw)
    return m.Event(**base)  # type: ignore[arg-type]


def _distribute(*events: m.Event) -> m.DistributeEvent:
    return m.DistributeEvent(request_id="req-1", vtn_id="vtn-1",
                             response=m.EiResponse(request_id="req-1"), events=list(events))


def test_full_event_validates_and_round_trips() -> None:
    event = _event(priority=1, test_event="false", vtn_comment="<shed & save>",
                   start_after=timedelta(minutes=5), notification=timedelta(hours=1),
                   ramp_up=timedelta(minutes=1), recovery=timedelta(minutes=2),
                   modification_date_time=NOW, modification_reason="deeper shed")
    msg = _distribute(event, _event("ev-2", event_status="cancelled", response_required="never"))
    data = encode(msg)
    validate(data)
    assert decode(data) == msg


def test_minimal_event_and_empty_distribute_validate() -> None:
    minimal = _event(signals=[m.EventSignal("simple", "level", "s", [
        m.SignalInterval(timedelta(minutes=30), 1.0)])], target=m.EventTarget())
    for msg in (_distribute(minimal), _distribute()):
        data = encode(msg)
        validate(data)
        assert decode(data) == msg


def test_schema_rejects_an_unknown_signal_type() -> None:
    bad = _event(signals=[m.EventSignal("SIMPLE", "shed-a-lot", "s", [
        m.SignalInterval(timedelta(minutes=30), 1.0)])])
    with pytest.raises(Exception, match="signalType"):
        validate(encode(_distribute(bad)))


def test_openleadr_reads_our_distribute_event() -> None:
    kind, payload = parse_message(encode(_distribute(_event(), _event("ev-2"))))
    assert kind == "oadrDistributeEvent"
    events = payload["events"]
    assert [e["event_descriptor"]["event_id"] for e in events] == ["ev-1", "ev-2"]
    first = events[0]
    assert first["event_descriptor"]["modification_number"] == 2
    assert first["event_descriptor"]["event_status"] == "far"
    assert first["active_period"]["dtstart"] == NOW + timedelta(hours=1)
    assert first["active_period"]["duration"] == timedelta(hours=2)
    simple, dispatch = first["event_signals"]
    assert simple["signal_name"] == "SIMPLE"
    assert [i["signal_payload"] for i in simple["intervals"]] == [1.0, 2.0]
    assert dispatch["signal_type"] == "delta"
    assert dispatch["intervals"][0]["signal_payload"] == -1500.0
    assert first["response_required"] == "always"
    targets = first["targets"]
    assert {"resource_id": "dev-1"} in targets and {"ven_id": "ven-1"} in targets
