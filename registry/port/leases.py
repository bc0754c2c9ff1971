"""Job leases: which VTN node runs a scheduled job (or one shard of it), with fencing.

A lease is a row / document per job name (``liveness.sweep/3`` for shard 3): holder,
expiry and a fencing token that grows every time the lease changes hands. A node that
held a lease and stalled past its expiry may still believe it holds it; its commits are
refused because they carry the old token (``Batch.fence``, checked by the adapter in the
same transaction / conditional write as the work), so work is never committed under a
lease someone else has taken over. Expiry compares wall clocks of the nodes (keep them
in NTP sync; the TTL is seconds, the skew milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from registry.port.errors import Conflict


class LeaseLost(Conflict):
    """The commit's fencing token is no longer current: another node holds the lease."""


@dataclass(frozen=True, slots=True)
class Lease:
    job: str  # lease name: the job, and "/<shard>" for one shard of it
    holder: str  # the node's id
    token: int  # fencing token: strictly grows with every change of holder
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Fence:
    """What a commit under a lease carries: refused unless the token is still current."""

    job: str
    token: int


# what a commit may be fenced by: one lease, or all the leases a node runs a job under
Fencing = Fence | tuple[Fence, ...] | None


def fences_of(fencing: Fencing) -> tuple[Fence, ...]:
    if fencing is None:
        return ()
    return (fencing,) if isinstance(fencing, Fence) else fencing


@dataclass(frozen=True, slots=True)
class Shard:
    """One of ``count`` parts of a job's work over VENs, by the end of the VEN id (see
    shard_of). Not ranges of ids: a UUIDv7 starts with its time, so a range of ids would
    be a range of registration dates."""

    index: int
    count: int
    more: tuple[int, ...] = ()  # further shards of the same job held by the same node

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(sorted({self.index, *self.more}))

    def covers(self, ven_id: str) -> bool:
        return shard_of(ven_id, self.count) in self.indices


HEX = "0123456789abcdef0123456789ABCDEF"  # position - 1, mod 16: the digit's value


def shard_of(ven_id: str, count: int) -> int:
    """The shard a VEN belongs to. Ids ending in two hex digits (UUIDs: the random end)
    by their value (0..255) mod count, near-uniform for any count; other ids by the code
    point of their last character mod count (non-ASCII: shard 0). The SQLite and Mongo
    adapters compute the same in SQL and in a regex."""
    if count <= 1 or not ven_id:
        return 0
    if len(ven_id) >= 2 and ven_id[-2] in HEX and ven_id[-1] in HEX:
        return (HEX.index(ven_id[-2]) % 16 * 16 + HEX.index(ven_id[-1]) % 16) % count
    last = ord(ven_id[-1])
    return last % count if last < 128 else 0


class LeaseStore(Protocol):
    async def acquire_lease(
        self, job: str, holder: str, ttl_s: float, now: datetime
    ) -> Lease | None:
        """Take the lease if it is free or expired (token + 1), or extend it if the holder
        already has it (same token); None while another holder's lease is unexpired."""
        ...

    async def renew_lease(self, lease: Lease, ttl_s: float, now: datetime) -> Lease | None:
        """Extend a held lease; None if its token is no longer current (taken over)."""
        ...

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up (expires now; the token stays, the next holder's is +1)."""
        ...

    async def list_leases(self, prefix: str) -> list[Lease]:
        """Every lease whose name starts with prefix (expired ones too), by name."""
        ...
