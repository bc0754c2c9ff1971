"""Registration of VENs that do not poll: HTTP push (oadrHttpPullModel false + URL) and
XMPP (the VEN's JID), the address policy of [push], and switching back to pull."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from registry.port import DeliveryTarget
from registry.sqlite import SqliteStore
from registry.transfer import export_store, import_store
from tests.oadr import call
from vtn.app import Vtn
from vtn.codec import messages as m
from vtn.services import admin


async def register_as(vtn: Vtn, name: str, **fields: object) -> m.CreatedPartyRegistration:
    if await vtn.store.find_ven_by_name(name) is None:
        await admin.provision_ven(vtn.ctx, name=name)
    reply = await call(vtn, "EiRegisterParty",
                       m.CreatePartyRegistration(request_id="r", ven_name=name, **fields))
    assert isinstance(reply, m.CreatedPartyRegistration)
    return reply


async def test_push_ven_registers_with_its_url_stored_on_the_ven(vtn: Vtn) -> None:
    url = "https://ven-1.example.com:8443/oadr/ven-1"
    reply = await register_as(vtn, "ven-1", http_pull_model=False, transport_address=url)
    assert reply.response.code == 200 and reply.ven_id
    ven = await vtn.store.get_ven(reply.ven_id)
    assert ven is not None and ven.http_pull_model is False
    assert (ven.transport_name, ven.transport_address) == ("simpleHttp", url)
    assert await vtn.store.delivery_target(reply.ven_id) == DeliveryTarget(
        reply.ven_id, "simpleHttp", url)
    entries = await vtn.store.read_log(ven_id=reply.ven_id)
    assert [e.data.get("transport") for e in entries if e.kind == "ven.registered"] == ["push"]


async def test_xmpp_ven_registers_with_its_jid(vtn: Vtn) -> None:
    jid = "ven-2@xmpp.example.com/oadr"
    reply = await register_as(vtn, "ven-2", transport_name="xmpp", transport_address=jid)
    assert reply.response.code == 200 and reply.ven_id
    ven = await vtn.store.get_ven(reply.ven_id)
    assert ven is not None and (ven.transport_name, ven.transport_address) == ("xmpp", jid)
    assert ven.http_pull_model is None
    assert await vtn.store.delivery_target(reply.ven_id) == DeliveryTarget(
        reply.ven_id, "xmpp", jid)


async def test_re_registering_for_pull_ends_push_delivery(vtn: Vtn) -> None:
    first = await register_as(vtn, "ven-3", http_pull_model=False,
                              transport_address="https://ven-3.example.com/oadr")
    assert first.response.code == 200 and first.ven_id
    again = await register_as(vtn, "ven-3")  # pull
    assert again.response.code == 200
    assert await vtn.store.delivery_target(first.ven_id) is None
    ven = await vtn.store.get_ven(first.ven_id)
    assert ven is not None and ven.http_pull_model is True and ven.transport_address is None


async def test_cancelled_registration_ends_push_delivery(vtn: Vtn) -> None:
    reg = await register_as(vtn, "ven-4", http_pull_model=False,
                            transport_address="https://ven-4.example.com/oadr")
    assert reg.ven_id and reg.registration_id
    reply = await call(vtn, "EiRegisterParty", m.CancelPartyRegistration(
        request_id="c", registration_id=reg.registration_id, ven_id=reg.ven_id))
    assert isinstance(reply, m.CanceledPartyRegistration) and reply.response.code == 200
    assert await vtn.store.delivery_target(reg.ven_id) is None


@pytest.mark.parametrize(("address", "why"), [
    (None, "must give its URL"),
    ("", "must give its URL"),
    ("ftp://ven.example.com/x", "scheme 'ftp' not allowed"),
    ("http://ven.example.com/x", "scheme 'http' not allowed"),  # default: https only
    ("ven.example.com/x", "scheme '(none)' not allowed"),
    ("https://user:pw@ven.example.com/x", "credentials"),
    ("https:///x", "no host"),
    ("https://ven.example.com:99999/x", "not a URL"),
    ("https://127.0.0.1/x", "127.0.0.1 is not a public address"),
    ("https://[::1]:8443/x", "::1 is not a public address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is not a public"),
    ("https://10.1.2.3/x", "10.1.2.3 is not a public address"),
    ("https://[::ffff:192.168.1.1]/x", "is not a public address"),
    ("https://bad_host!/x", "not a valid host name"),
    ("https://ven.example.com/x#frag", "fragment"),
])
async def test_push_addresses_the_policy_refuses_say_why(
    vtn: Vtn, address: str | None, why: str
) -> None:
    reply = await register_as(vtn, "ven-5", http_pull_model=False, transport_address=address)
    assert reply.response.code == m.NOT_ALLOWED
    assert why in reply.response.description
    ven = await vtn.store.find_ven_by_name("ven-5")
    assert ven is not None and not ven.registered  # nothing written


async def test_policy_allows_configured_networks_hosts_and_ports(vtn: Vtn) -> None:
    push = vtn.config.push
    push.allowed_schemes = ["http", "https"]
    push.allowed_cidrs = ["10.20.0.0/16"]
    push.allowed_hosts = ["*.vens.example.com"]
    push.allowed_ports = [8443]
    ok = await register_as(vtn, "ven-6", http_pull_model=False,
                           transport_address="http://10.20.1.2:8443/ven-6")
    assert ok.response.code == 200
    for address, why in [
        ("http://10.21.1.2:8443/x", "not in [push] allowed_cidrs"),
        ("https://other.example.com:8443/x", "not in [push] allowed_hosts"),
        ("https://a.vens.example.com:443/x", "port 443 not allowed"),
    ]:
        reply = await register_as(vtn, "ven-7", http_pull_model=False,
                                  transport_address=address)
        assert reply.response.code == m.NOT_ALLOWED and why in reply.response.description
    good = await register_as(vtn, "ven-7", http_pull_model=False,
                             transport_address="https://a.vens.example.com:8443/x")
    assert good.response.code == 200
    push.allow_public = False
    reply = await register_as(vtn, "ven-8", http_pull_model=False,
                              transport_address="https://8.8.8.8:8443/x")
    assert reply.response.code == m.NOT_ALLOWED


@pytest.mark.parametrize("jid", [None, "", "two@at@example.com", "has space@example.com"])
async def test_xmpp_without_a_jid_is_refused(vtn: Vtn, jid: str | None) -> None:
    reply = await register_as(vtn, "ven-9", transport_name="xmpp", transport_address=jid)
    assert reply.response.code == m.NOT_ALLOWED


async def test_unknown_transport_is_refused_by_the_schema(vtn: Vtn) -> None:
    reply = await register_as(vtn, "ven-10", transport_name="carrierPigeon")
    assert reply.response.code == m.INVALID_DATA and "carrierPigeon" in reply.response.description


async def test_export_import_keeps_push_and_xmpp_delivery(vtn: Vtn, tmp_path: Path) -> None:
    push = await register_as(vtn, "ven-11", http_pull_model=False,
                             transport_address="https://ven-11.example.com/oadr")
    xmpp = await register_as(vtn, "ven-12", transport_name="xmpp",
                             transport_address="ven-12@xmpp.example.com")
    pull = await register_as(vtn, "ven-13")
    dump = io.StringIO()
    await export_store(vtn.store, dump)
    other = SqliteStore(tmp_path / "imported.sqlite3")
    await other.open()
    try:
        await import_store(other, io.StringIO(dump.getvalue()))
        assert await other.delivery_target(push.ven_id or "") == DeliveryTarget(
            push.ven_id or "", "simpleHttp", "https://ven-11.example.com/oadr")
        assert await other.delivery_target(xmpp.ven_id or "") == DeliveryTarget(
            xmpp.ven_id or "", "xmpp", "ven-12@xmpp.example.com")
        assert await other.delivery_target(pull.ven_id or "") is None
    finally:
        await other.close()
