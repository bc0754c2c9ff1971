"""Telemetry history for measured response (issue #14), kept off the update-report path.

Every load value an OSB reports for a DER (``payloadFloat`` of an rID whose reportType
is ``usage`` or ``demand``, normalised to W with its itemUnits / siScaleCode) is added
to an in-memory ``(sum, count)`` per (DER, rID, bucket of ``[reports] history_bucket_s``
by the interval's dtstart). The :func:`flush` job writes them every
``history_flush_s`` as additive upserts, so the hot path costs a dict update and no
store write, and several VTN processes merge their partial sums (addition commutes).
A crash loses at most one flush interval of samples (averages, not billing data).
Buckets older than ``history_keep_s`` are pruned by the same job once an hour.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from weakref import WeakKeyDictionary

from registry.port import Batch, TelemetryBucket
from vtn.services.base import Context
from vtn.services.profile import to_watts

LOAD_REPORT_TYPES = frozenset({"usage", "demand"})
PRUNE_EVERY = timedelta(hours=1)

# (device_id, rID, at, value, units, si_scale) of one reported payload
Sample = tuple[str, str, datetime, float, str | None, str | None]


class HistoryBuffer:
    """Samples of one VTN process not yet written, summed per bucket."""

    def __init__(self) -> None:
        self.acc: dict[tuple[str, str, float], list[float]] = {}
        self.pruned_at: datetime | None = None

    def add(self, samples: Iterable[Sample], bucket_s: float) -> None:
        acc = self.acc
        for device_id, r_id, at, value, units, si_scale in samples:
            bucket = math.floor(at.timestamp() / bucket_s) * bucket_s
            w = to_watts(value, units, si_scale)
            cell = acc.get((device_id, r_id, bucket))
            if cell is None:
                acc[(device_id, r_id, bucket)] = [w, 1.0]
            else:
                cell[0] += w
                cell[1] += 1

    def drain(self) -> list[TelemetryBucket]:
        acc, self.acc = self.acc, {}
        return [
            TelemetryBucket(d, r, datetime.fromtimestamp(b, UTC), s, int(n))
            for (d, r, b), (s, n) in acc.items()
        ]


# one buffer per VTN (its Context's contact tracker is unique to it and weak-referable)
_buffers: WeakKeyDictionary[object, HistoryBuffer] = WeakKeyDictionary()


def buffer_of(ctx: Context) -> HistoryBuffer:
    buf = _buffers.get(ctx.contacts)
    if buf is None:
        buf = _buffers[ctx.contacts] = HistoryBuffer()
    return buf


def record(ctx: Context, samples: list[Sample]) -> None:
    if samples:
        buffer_of(ctx).add(samples, ctx.config.reports.history_bucket_s)


async def flush(ctx: Context) -> int:
    """Scheduler job: write the buffered buckets (and prune old ones hourly)."""
    buf = buffer_of(ctx)
    buckets = buf.drain()
    now = ctx.clock()
    batch = Batch(telemetry=buckets)
    if buf.pruned_at is None or now - buf.pruned_at >= PRUNE_EVERY:
        batch.prune_telemetry_before = now - timedelta(seconds=ctx.config.reports.history_keep_s)
        buf.pruned_at = now
    try:
        await ctx.store.commit(batch)
    except Exception:
        for b in buckets:  # keep them for the next run
            cell = buf.acc.setdefault((b.device_id, b.r_id, b.bucket.timestamp()), [0.0, 0.0])
            cell[0] += b.sum_w
            cell[1] += b.count
        raise
    return len(buckets)
