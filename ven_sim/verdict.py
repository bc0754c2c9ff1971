"""Whether a ven-sim run worked, and why not: its exit status.

A run that looks fine but did nothing (no VEN registered, the VTN not there, most
requests refused) must not exit 0, or a script or CI job would take it for a success.
"""

from __future__ import annotations

from dataclasses import dataclass

from ven_sim.stats import Stats

OK, SERVER_ERRORS, NO_REGISTRATION, UNREACHABLE, TOO_MANY_REFUSALS = 0, 2, 3, 4, 5
UNREACHABLE_KINDS = ("connection", "timeout", "tls")


@dataclass(frozen=True)
class Verdict:
    status: int
    reason: str  # empty when status is 0

    def to_dict(self) -> dict[str, object]:
        return {"exit_status": self.status, "reason": self.reason}


def refusals(stats: Stats) -> dict[str, int]:
    """OpenADR error codes answered to real messages (not the bad scenario's own)."""
    out = {k: n for k, n in stats.errors.items() if k.startswith("oadr ")}
    for answers in stats.bad_answers.values():
        for k, n in answers.items():
            if k in out:
                out[k] -= n
    return {k: n for k, n in out.items() if n > 0}


def judge(stats: Stats, max_refused: float) -> Verdict:
    """The first of: VTN unreachable, no VEN registered, 5xx answers, too many refusals."""
    answered = sum(stats.received.values())
    if answered == 0 and stats.requests:
        failures = {k: stats.errors.get(k, 0) for k in UNREACHABLE_KINDS if stats.errors.get(k)}
        detail = ", ".join(f"{n} {k}" for k, n in failures.items()) or "no answers"
        return Verdict(UNREACHABLE, f"VTN unreachable: {detail} errors, no answer at all")
    refused = refusals(stats)
    if stats.vens and stats.vens_registered == 0 and stats.registrations == 0:
        codes = ", ".join(f"{n} x {k}" for k, n in sorted(refused.items()))
        hint = (" (463: not provisioned; `vtn vens add`, or [registration] open_enrollment)"
                if "oadr 463" in refused else "")
        return Verdict(NO_REGISTRATION, f"no VEN registered{': ' + codes if codes else ''}"
                                        f"{hint}")
    if stats.server_errors:
        return Verdict(SERVER_ERRORS, f"the VTN answered {stats.server_errors} requests "
                                      "with a 5xx")
    total = sum(refused.values())
    if stats.requests and total / stats.requests > max_refused:
        codes = ", ".join(f"{n} x {k}" for k, n in sorted(refused.items()))
        return Verdict(TOO_MANY_REFUSALS,
                       f"{total} of {stats.requests} requests refused ({codes}), over "
                       f"--max-refused {max_refused:g}")
    return Verdict(OK, "")
