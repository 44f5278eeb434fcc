"""`cdnlab bench fidelity`: configured vs measured RTT, goodput and loss, per shaping backend.

For every backend this kernel supports, one two-host network is brought up with its link in
a link namespace, and the link is reshaped in place between cases (which exercises the live
change path too): RTT at one-way delays 5/20/50/100 ms, TCP goodput at 10/50/100 Mbit/s
(10 ms delay), UDP loss at 1 % and 5 %. The baseline is the same link unshaped, measured in
the same run; ratios are measured / configured. `--quick` does one case of each kind. Where
the kernel has both backends (the QEMU tier's guest), a last table sets them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdnlab.capabilities import detect
from cdnlab.errors import EnvironmentProblem
from cdnlab.measure import fidelity
from cdnlab.net.emulation import Emulation
from cdnlab.net.shaping import BACKENDS, choose_backend
from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import parse_topology

BENCH_TOPOLOGY = {"name": "bench_pair", "nodes": {"src": "server", "dst": "client"},
                  "links": [{"a": "src", "b": "dst"}]}
DELAYS_MS = (5, 20, 50, 100)
RATES_MBPS = (10, 50, 100)
LOSSES_PCT = (1, 5)
QUICK = ((20,), (50,), (5,))


@dataclass
class BenchResult:
    backend: str
    baseline_rtt_ms: float
    baseline_mbps: float
    report: fidelity.FidelityReport

    def line(self) -> str:
        s = self.report.summary()
        return (f"fidelity: backend={self.backend} "
                f"rtt_err_max={fidelity.shown(s['rtt_err_max_pct'])}% "
                f"rate_err_max={fidelity.shown(s['rate_err_max_pct'])}% "
                f"loss_err_max={fidelity.shown(s['loss_err_max_pp'])}pp")


def _reshape(emu: Emulation, shape: LinkShape) -> None:
    for direction in ("a_to_b", "b_to_a"):
        emu.changes.set_shape("src", "dst", direction, shape)


def bench_backend(backend: str, quick: bool, seconds: float,
                  cpu_awake: str = "auto") -> BenchResult:
    delays, rates, losses = QUICK if quick else (DELAYS_MS, RATES_MBPS, LOSSES_PCT)
    topology = parse_topology(BENCH_TOPOLOGY, "bench")
    with Emulation(topology, shaping=backend, dynamic_links={"src--dst"},
                   cpu_awake=cpu_awake) as emu:
        base = fidelity.measure_rtt(emu, [("dst", "src")])[0]
        base_rate = fidelity.measure_goodput(emu, "src", "dst", seconds, rate_mbps=0.0)
        report = fidelity.FidelityReport(emu.shaping, emu.datapath,
                                         cpu_awake=emu.awake.describe())
        for delay in delays:
            _reshape(emu, LinkShape(delay=float(delay)))
            report.rtt += fidelity.measure_rtt(emu, [("dst", "src")])
        for rate in rates:
            _reshape(emu, LinkShape(rate=float(rate), delay=10.0))
            report.rate.append(fidelity.measure_goodput(emu, "src", "dst", seconds))
        for loss in losses:
            _reshape(emu, LinkShape(loss=float(loss)))
            report.loss.append(fidelity.measure_loss(emu, "src", "dst", seconds * 2))
    return BenchResult(backend, base.measured_ms, base_rate.measured_mbps, report)


def table(result: BenchResult) -> str:
    rep = result.report
    setup = fidelity.setup_text(None, rep.datapath, rep.cpu_awake)
    lines = [f"backend {result.backend} ({setup}); baseline, unshaped: "
             f"RTT {result.baseline_rtt_ms:.3f} ms, TCP {result.baseline_mbps:.0f} Mbit/s",
             f"  {'case':<22}{'configured':>12}{'measured':>12}{'ratio':>8}{'error':>9}"]
    for s in rep.rtt:
        lines.append(f"  {'RTT':<22}{s.expected_ms:>10.2f}ms{s.measured_ms:>10.2f}ms"
                     f"{s.measured_ms / s.expected_ms:>8.3f}{s.error_pct:>+8.2f}%")
    for r in rep.rate:
        lines.append(f"  {'TCP goodput':<22}{r.ideal_mbps:>8.2f}Mbit{r.measured_mbps:>8.2f}Mbit"
                     f"{r.measured_mbps / r.ideal_mbps:>8.3f}{r.error_pct:>+8.2f}%")
    for x in rep.loss:
        ratio = x.measured_pct / x.expected_pct if x.expected_pct else 0.0
        lines.append(f"  {'UDP loss':<22}{x.expected_pct:>11.2f}%{x.measured_pct:>11.2f}%"
                     f"{ratio:>8.3f}{x.error_pp:>+7.2f}pp")
    lines.append("  (goodput configured = htb rate × 1448/1514, TCP payload per Ethernet frame)")
    return "\n".join(lines)


def _cases(result: BenchResult) -> list[tuple[str, float, float]]:
    """(case, configured, measured) in a fixed order, for comparing backends."""
    rep = result.report
    return ([(f"RTT {s.expected_ms:g} ms", s.expected_ms, s.measured_ms) for s in rep.rtt]
            + [(f"TCP {r.rate_mbps:g} Mbit/s", r.ideal_mbps, r.measured_mbps)
               for r in rep.rate]
            + [(f"loss {x.expected_pct:g} %", x.expected_pct, x.measured_pct)
               for x in rep.loss])


def comparison(results: list[BenchResult]) -> str:
    """Backends side by side on this kernel: each measured/configured ratio, and each
    backend's error against the first's (netem, the reference, where the kernel has it)."""
    names = [r.backend for r in results]
    head = f"  {'case':<18}{'configured':>11}" + "".join(f"{n:>10}" for n in names)
    head += "".join(f"{n + ' vs ' + names[0]:>18}" for n in names[1:])
    lines = [f"backends compared on this kernel ({', '.join(names)}), measured / configured:",
             head]
    per_backend = [_cases(r) for r in results]
    for i, (case, configured, _) in enumerate(per_backend[0]):
        ratios = [cases[i][2] / cases[i][1] if cases[i][1] else 0.0 for cases in per_backend]
        line = f"  {case:<18}{configured:>11.2f}" + "".join(f"{r:>10.3f}" for r in ratios)
        line += "".join(f"{100 * (r - ratios[0]):>+17.2f}%" for r in ratios[1:])
        lines.append(line)
    return "\n".join(lines)


def run(backend: str, quick: bool, cpu_awake: str = "auto") -> int:
    caps = detect()
    usable = []
    for name in BACKENDS if backend == "all" else (backend,):
        try:
            choose_backend(name, caps)
        except EnvironmentProblem as problem:
            print(f"(skipped: {problem})")
            continue
        usable.append(name)
    results = [bench_backend(b, quick, 2.0 if quick else 3.0, cpu_awake) for b in usable]
    for result in results:
        print(table(result))
        print()
    if len(results) > 1:
        print(comparison(results))
        print()
    for result in results:
        print(result.line())
    return 0 if results else 1
