"""Fixtures and helpers of the XMPP tests: a Prosody per module, accounts, VTN and VEN
sessions on it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from tests.xmpp_server import ProsodyServer, prosody_path
from ven_sim.stats import Stats
from ven_sim.xmpp_link import XmppLink
from vtn.config import XmppConfig

VTN_JID = "vtn@localhost/openadr"
_users = itertools.count(1)


def prosody_or_skip() -> None:
    if prosody_path() is None:
        pytest.skip("prosody is not installed (apt-get install -y prosody): the XMPP tests "
                    "need a real XMPP server")


@pytest.fixture(scope="module")
def prosody() -> Iterator[ProsodyServer]:
    prosody_or_skip()
    server = ProsodyServer()
    server.add_account("vtn", "vtn-secret")
    server.start()
    yield server
    server.cleanup()


def xmpp_config(server: ProsodyServer, **overrides: object) -> XmppConfig:
    values: dict[str, object] = {
        "enabled": True, "jid": VTN_JID, "password": "vtn-secret",
        "server_host": "127.0.0.1", "server_port": server.port, "tls": "none",
        "ack_timeout_s": 5.0, "reconnect_max_s": 1.0,
    }
    values.update(overrides)
    return XmppConfig(**values)  # type: ignore[arg-type]


async def ven_link(server: ProsodyServer, stats: Stats | None = None,
                   user: str | None = None) -> XmppLink:
    """A VEN session with a fresh account, connected."""
    user = user or f"ven{next(_users)}"
    server.add_account(user, f"{user}-pw")
    link = XmppLink(f"{user}@{server.domain}/ven", f"{user}-pw", VTN_JID, stats or Stats(),
                    ("127.0.0.1", server.port), timeout_s=15.0, validate=True)
    link.connect()
    await asyncio.wait_for(link.online.wait(), 10)
    return link


async def eventually(check, timeout_s: float = 10.0, every_s: float = 0.05):  # type: ignore[no-untyped-def]
    """Wait until ``check()`` (sync or async) is truthy; return its value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every_s)
