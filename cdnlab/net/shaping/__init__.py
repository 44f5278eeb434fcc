"""Shaping backends behind one `LinkShape`: `netem` where the kernel has it, `nfqueue`
(htb + a userspace delay process) where it does not. `choose_backend` picks one from what
this machine offers, or checks that a forced one can run here.
"""

from __future__ import annotations

from cdnlab.capabilities import Capabilities
from cdnlab.errors import EnvironmentProblem
from cdnlab.net.shaping.base import Backend

BACKENDS = ("netem", "nfqueue")


def choose_backend(requested: str, caps: Capabilities) -> Backend:
    if requested == "auto":
        requested = caps.shaping_backend or ""
        if not requested:
            raise EnvironmentProblem(
                "no shaping backend works here: the kernel has neither sch_netem nor "
                "htb + NFQUEUE + physdev + bridge netfilter (run `cdnlab doctor`)")
    if requested == "netem":
        if not (caps.netem and caps.htb):
            raise EnvironmentProblem("--shaping netem: this kernel has no sch_netem (or htb); "
                                     "use --shaping nfqueue or auto")
        from cdnlab.net.shaping.netem import NetemBackend

        return NetemBackend()
    if requested == "nfqueue":
        if not caps.nfqueue_ready:
            raise EnvironmentProblem("--shaping nfqueue needs htb, the iptables NFQUEUE target, "
                                     "physdev match and bridge netfilter (run `cdnlab doctor`)")
        from cdnlab.net.shaping.nfqueue import NfqueueBackend

        return NfqueueBackend()
    raise EnvironmentProblem(f"unknown shaping backend {requested!r}: use auto, "
                             f"{', '.join(BACKENDS)}")
