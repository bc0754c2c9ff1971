"""EiRegisterParty and OadrPoll through the real engine over a real SQLite store."""

from __future__ import annotations

from datetime import timedelta

from registry.port import SERVICE
from tests.oadr import call, metadata, register
from vtn.app import Vtn
from vtn.codec import decode, encode
from vtn.codec import messages as m
from vtn.services import admin


async def poll(vtn: Vtn, ven_id: str) -> m.Message:
    return await call(vtn, "OadrPoll", m.Poll(ven_id=ven_id))


async def test_query_registration_describes_the_vtn(vtn: Vtn) -> None:
    reply = await call(vtn, "EiRegisterParty", m.QueryRegistration(request_id="q-1"))
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == 200 and reply.response.request_id == "q-1"
    assert reply.vtn_id == vtn.config.vtn_id
    assert ("2.0b", ["simpleHttp"]) in reply.profiles
    assert reply.poll_freq == timedelta(seconds=vtn.config.registration.poll_freq_s)
    assert reply.ven_id is None and reply.registration_id is None


async def test_provisioned_ven_registers_and_gets_vtn_register_report_on_poll(vtn: Vtn) -> None:
    reply = await register(vtn, "osb-1", account_id="acc-1", aggregator_id="agg-1")
    assert reply.ven_id and reply.registration_id
    ven = await vtn.store.get_ven(reply.ven_id)
    assert ven is not None and ven.registered and ven.registration_id == reply.registration_id
    assert ven.liveness == "online"
    first = await poll(vtn, reply.ven_id)
    assert isinstance(first, m.RegisterReport) and first.ven_id == reply.ven_id
    empty = await poll(vtn, reply.ven_id)
    assert isinstance(empty, m.Response) and empty.response.code == 200
    kinds = [e.kind for e in await vtn.store.read_log()]
    assert kinds == ["ven.provisioned", "ven.registered", "ven.liveness"]


async def test_reregistration_with_registration_id_keeps_ids(vtn: Vtn) -> None:
    first = await register(vtn)
    again = await call(
        vtn,
        "EiRegisterParty",
        m.CreatePartyRegistration(
            request_id="r2",
            ven_id=first.ven_id,
            registration_id=first.registration_id,
            ven_name="osb-1",
        ),
    )
    assert isinstance(again, m.CreatedPartyRegistration)
    assert again.response.code == 200 and again.response.request_id == "r2"
    assert (again.ven_id, again.registration_id) == (first.ven_id, first.registration_id)


async def test_wrong_registration_id_is_452_and_changes_nothing(vtn: Vtn) -> None:
    first = await register(vtn)
    before = await vtn.store.get_ven(first.ven_id or "")
    reply = await call(
        vtn,
        "EiRegisterParty",
        m.CreatePartyRegistration(
            request_id="r3", ven_id=first.ven_id, registration_id="not-mine", ven_name="osb-1"
        ),
    )
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == 452 and reply.response.request_id == "r3"
    assert reply.ven_id is None and reply.registration_id is None
    assert await vtn.store.get_ven(first.ven_id or "") == before


async def test_ven_that_lost_state_gets_its_ven_id_back_and_keeps_ders(vtn: Vtn) -> None:
    first = await register(vtn)
    ven_id = first.ven_id or ""
    await call(vtn, "EiReport", metadata(ven_id, {"boiler": "Water_Heater", "pv": "PV"}))
    ders_before = {d.device_id for d in await vtn.store.ders_of_ven(ven_id)}
    again = await call(
        vtn, "EiRegisterParty", m.CreatePartyRegistration(request_id="r4", ven_name="osb-1")
    )
    assert isinstance(again, m.CreatedPartyRegistration) and again.response.code == 200
    assert again.ven_id == ven_id and again.registration_id != first.registration_id
    await call(vtn, "EiReport", metadata(ven_id, {"boiler": "Water_Heater", "pv": "PV"}))
    assert {d.device_id for d in await vtn.store.ders_of_ven(ven_id)} == ders_before
    # report requests of the lost registration are closed
    states = [r.state for r in await vtn.store.report_requests_of_ven(ven_id)]
    assert states.count("cancelled") == 2 and states.count("pending") == 2


async def test_unknown_ven_is_refused_when_enrollment_is_closed(vtn: Vtn) -> None:
    reply = await call(
        vtn, "EiRegisterParty", m.CreatePartyRegistration(request_id="r5", ven_name="stranger")
    )
    assert isinstance(reply, m.CreatedPartyRegistration)
    assert reply.response.code == 463
    assert reply.ven_id is None and reply.registration_id is None
    assert await vtn.store.list_vens(SERVICE) == []


async def test_open_enrollment_uses_default_tenant(vtn: Vtn) -> None:
    vtn.config.registration.open_enrollment = True
    vtn.config.registration.default_aggregator_id = "agg-open"
    vtn.config.registration.default_account_id = "acc-open"
    reply = await call(
        vtn, "EiRegisterParty", m.CreatePartyRegistration(request_id="r6", ven_name="newcomer")
    )
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 200
    ven = await vtn.store.get_ven(reply.ven_id or "")
    assert ven is not None and ven.ven_name == "newcomer"
    assert (ven.aggregator_id, ven.account_id) == ("agg-open", "acc-open")


async def test_push_to_a_private_address_is_refused_by_default(vtn: Vtn) -> None:
    """HTTP push is accepted (tests/test_push_registration.py), but the default [push]
    policy allows only https to public addresses: 10.0.0.1 over http is refused."""
    await admin.provision_ven(vtn.ctx, name="pusher")
    reply = await call(
        vtn,
        "EiRegisterParty",
        m.CreatePartyRegistration(
            request_id="r7",
            ven_name="pusher",
            http_pull_model=False,
            transport_address="http://10.0.0.1/",
        ),
    )
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 451


async def test_ven_cancels_its_registration(vtn: Vtn) -> None:
    reg = await register(vtn)
    ven_id = reg.ven_id or ""
    reply = await call(
        vtn,
        "EiRegisterParty",
        m.CancelPartyRegistration(
            request_id="c1", registration_id=reg.registration_id or "", ven_id=ven_id
        ),
    )
    assert isinstance(reply, m.CanceledPartyRegistration)
    assert reply.response.code == 200 and reply.registration_id == reg.registration_id
    ven = await vtn.store.get_ven(ven_id)
    assert ven is not None and not ven.registered
    assert await vtn.store.pending_count(ven_id) == 0
    after = await poll(vtn, ven_id)
    assert isinstance(after, m.Response) and after.response.code == 463


async def test_cancel_with_wrong_registration_id_is_452(vtn: Vtn) -> None:
    reg = await register(vtn)
    reply = await call(
        vtn,
        "EiRegisterParty",
        m.CancelPartyRegistration(request_id="c2", registration_id="other", ven_id=reg.ven_id),
    )
    assert isinstance(reply, m.CanceledPartyRegistration) and reply.response.code == 452
    ven = await vtn.store.get_ven(reg.ven_id or "")
    assert ven is not None and ven.registered


async def test_vtn_initiated_cancel_goes_out_on_poll(vtn: Vtn) -> None:
    reg = await register(vtn)
    ven_id = reg.ven_id or ""
    await poll(vtn, ven_id)  # the VTN's oadrRegisterReport
    await admin.cancel_registration(vtn.ctx, "osb-1")
    msg = await poll(vtn, ven_id)
    assert isinstance(msg, m.CancelPartyRegistration)
    assert msg.registration_id == reg.registration_id and msg.ven_id == ven_id
    ack = await call(
        vtn,
        "EiRegisterParty",
        m.CanceledPartyRegistration(
            response=m.EiResponse(200, "OK", msg.request_id),
            registration_id=reg.registration_id,
            ven_id=ven_id,
        ),
    )
    assert isinstance(ack, m.Response) and ack.response.code == 200
    ven = await vtn.store.get_ven(ven_id)
    assert ven is not None and not ven.registered
    kinds = [e.kind for e in await vtn.store.read_log()]
    assert kinds[-2:] == ["ven.cancel_requested", "ven.registration_cancelled"]


async def test_unsolicited_canceled_registration_is_out_of_sequence(vtn: Vtn) -> None:
    reg = await register(vtn)
    reply = await call(
        vtn,
        "EiRegisterParty",
        m.CanceledPartyRegistration(
            response=m.EiResponse(200, "OK", "x"),
            registration_id=reg.registration_id,
            ven_id=reg.ven_id,
        ),
    )
    assert isinstance(reply, m.Response) and reply.response.code == 450
    ven = await vtn.store.get_ven(reg.ven_id or "")
    assert ven is not None and ven.registered


async def test_reregistration_request_goes_out_on_poll(vtn: Vtn) -> None:
    reg = await register(vtn)
    ven_id = reg.ven_id or ""
    await poll(vtn, ven_id)
    await admin.request_reregistration(vtn.ctx, ven_id)
    msg = await poll(vtn, ven_id)
    assert isinstance(msg, m.RequestReregistration) and msg.ven_id == ven_id
    ack = await call(vtn, "EiRegisterParty", m.Response(m.EiResponse(200, "OK", ""), ven_id=ven_id))
    assert isinstance(ack, m.Response) and ack.response.code == 200


async def test_outbox_is_fifo(vtn: Vtn) -> None:
    reg = await register(vtn)
    ven_id = reg.ven_id or ""
    await admin.request_reregistration(vtn.ctx, ven_id)
    await admin.cancel_registration(vtn.ctx, ven_id)
    got = [type(await poll(vtn, ven_id)) for _ in range(4)]
    assert got == [m.RegisterReport, m.RequestReregistration, m.CancelPartyRegistration, m.Response]


async def test_poll_from_unknown_ven_is_463(vtn: Vtn) -> None:
    reply = await poll(vtn, "nobody")
    assert isinstance(reply, m.Response) and reply.response.code == 463


async def test_one_certificate_cannot_register_a_second_ven_name(vtn: Vtn) -> None:
    """A VEN bound to a certificate fingerprint keeps it: the same certificate naming
    another oadrVenName is refused with 463 and logged (it used to become the first VEN)."""
    from vtn.services.admin import provision_ven

    await provision_ven(vtn.ctx, name="osb-a", fingerprint="AA:BB")
    await provision_ven(vtn.ctx, name="osb-b")
    msg = m.CreatePartyRegistration(request_id="r1", ven_name="osb-b")
    reply = decode((await vtn.engine.handle("EiRegisterParty", encode(msg), "AA:BB")).body)
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 463
    b = await vtn.store.find_ven_by_name("osb-b")
    assert b is not None and not b.registered and b.fingerprint is None
    kinds = [e.kind for e in await vtn.store.read_log(limit=100)]
    assert "security.fingerprint_mismatch" in kinds
    ok = m.CreatePartyRegistration(request_id="r2", ven_name="osb-a")
    reply = decode((await vtn.engine.handle("EiRegisterParty", encode(ok), "AA:BB")).body)
    assert isinstance(reply, m.CreatedPartyRegistration) and reply.response.code == 200
