"""Micro-benchmark of the OpenADR XML codec: ``python bench/codec_bench.py``.

Prints µs/op (best of 5 runs) for decode without and with XSD validation, and encode.
Targets on the reference machine: oadrPoll decode <= 15 µs and 4-point oadrUpdateReport
decode <= 80 µs, both without validation.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtn.codec import decode, encode  # noqa: E402
from vtn.codec import messages as m  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _update_report() -> m.UpdateReport:
    intervals = [
        m.ReportInterval([m.ReportPayload("rid-power", value=1000.5 + i)],
                         dtstart=NOW + timedelta(minutes=i), duration=timedelta(minutes=1))
        for i in range(4)
    ]
    report = m.Report("spec-1", "TELEMETRY_USAGE", NOW, report_request_id="rr-1",
                      report_id="rep-1", dtstart=NOW, intervals=intervals)
    return m.UpdateReport("req-1", [report], ven_id="ven-1")


def _register_report() -> m.RegisterReport:
    sampling = m.SamplingRate(timedelta(seconds=10), timedelta(minutes=5))
    power = m.ItemBase("powerReal", "RealPower", "W", "k", hertz=50.0, voltage=230.0, ac=True)
    descriptions = [
        m.ReportDescription(f"rid-{i}", "usage", "Direct Read", resource_id=f"dev-{i}",
                            market_context="http://mc.example", item=power,
                            sampling_rate=sampling)
        for i in range(6)
    ]
    report = m.Report("spec-1", "METADATA_TELEMETRY_USAGE", NOW, duration=timedelta(hours=1),
                      descriptions=descriptions)
    return m.RegisterReport("req-1", [report], ven_id="ven-1")


CASES: dict[str, m.Message] = {
    "oadrPoll": m.Poll("ven-1"),
    "oadrUpdateReport (4 points)": _update_report(),
    "oadrRegisterReport (6 descr.)": _register_report(),
    "oadrCreatedPartyRegistration": m.CreatedPartyRegistration(
        m.EiResponse(200, "OK", "req-1"), "vtn-1", "reg-1", "ven-1",
        poll_freq=timedelta(seconds=10)),
}


def best_us(fn: Callable[[], object], n: int) -> float:
    """Best-of-5 mean time per call, in microseconds."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best / 1000


def main() -> None:
    print(f"{'message':32} {'bytes':>6} {'decode':>9} {'dec+xsd':>9} {'encode':>9}  (µs/op)")
    for name, msg in CASES.items():
        data = encode(msg)
        assert decode(data) == msg
        dec = best_us(lambda d=data: decode(d, validate=False), 20000)
        val = best_us(lambda d=data: decode(d), 2000)
        enc = best_us(lambda x=msg: encode(x), 20000)
        print(f"{name:32} {len(data):>6} {dec:>9.2f} {val:>9.2f} {enc:>9.2f}")


if __name__ == "__main__":
    main()
