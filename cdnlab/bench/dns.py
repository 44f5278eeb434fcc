"""`cdnlab bench dns`: queries per second and latency of the redirector under dnsperf.

Every server runs on loopback pinned to one core (taskset), with dnsperf pinned to the
other: the redirector (`python -m nodes.dns`, UDP thread, fast path, decision log on);
as the baseline, the same resolver behind dnslib's stock threaded server; and as a peer,
Knot DNS (`knotd`, Debian's `knot`, one UDP worker) serving the same answer from a static
zone, which is what a production authoritative server does per core without a policy. The
redirector and the stock server hold three clusters with RTTs to the querying network and
edge_a over its threshold, so every answer runs the `min_rtt_spill` policy and its spill
controller.

Two dnsperf runs per server: throughput (as fast as it answers, 100 queries outstanding),
then latency at half that rate, from dnsperf's per-query log (-v), so the percentiles show
the server and not the queue dnsperf builds when it saturates it. The three servers take
turns for `rounds` rounds (a busy moment of the host falls on all alike) and each figure is
the median of its rounds. The target is at least 0.4 × Knot's queries/s per core.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from cdnlab.errors import EnvironmentProblem
from nodes.common.conventions import DNS_POLICY, DNS_TTL_S, SERVICE, SERVICE_LABEL, ZONE

SERVER_CPU, LOAD_CPU = "1", "0"
KNOT_TARGET = 0.4  # of Knot's queries/s, per core


@dataclass
class PerfResult:
    name: str
    qps: float
    mean_ms: float
    p99_ms: float
    lost_pct: float


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return int(udp.getsockname()[1])


def _wait_answering(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EnvironmentProblem(f"the DNS server under test exited ({process.returncode})")
        out = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "-p",
                              str(port), SERVICE, "A"], capture_output=True,
                             text=True, check=False).stdout
        if out.strip() and not out.startswith(";"):
            return
        time.sleep(0.1)
    raise EnvironmentProblem("the DNS server under test does not answer")


def _run_dnsperf(port: int, queries: Path, seconds: float, *extra: str) -> tuple[
        dict[str, str], list[float]]:
    run = subprocess.run(["taskset", "-c", LOAD_CPU, "dnsperf", "-s", "127.0.0.1", "-p",
                          str(port), "-d", str(queries), "-l", f"{seconds:g}", *extra],
                         capture_output=True, text=True, check=False)
    if run.returncode:
        raise EnvironmentProblem(f"dnsperf failed: {run.stderr.strip()[-300:]}")
    fields = {}
    for line in run.stdout.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    latencies = sorted(float(line.rsplit(None, 1)[1]) for line in run.stdout.splitlines()
                       if line.startswith("> NOERROR"))
    return fields, latencies


def _dnsperf(name: str, port: int, queries: Path, seconds: float) -> PerfResult:
    fields, _ = _run_dnsperf(port, queries, seconds)
    qps = float(fields["Queries per second"])
    lost = float(fields["Queries lost"].split("(")[1].rstrip("%)"))
    _, latencies = _run_dnsperf(port, queries, max(2.0, seconds / 2), "-v", "-Q",
                                str(max(1, int(qps / 2))))
    p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else float("nan")
    mean = sum(latencies) / len(latencies) * 1000 if latencies else float("nan")
    return PerfResult(name, qps, mean, p99, lost)


def _config(port: int) -> dict[str, object]:
    return {
        "zone": ZONE, "listen": {"address": "127.0.0.1", "port": port},
        "services": {SERVICE_LABEL: {"policy": DNS_POLICY, "ttl": DNS_TTL_S}},
        "clusters": {c: {"addresses": [f"10.9.{i}.2", f"10.9.{i}.3"]}
                     for i, c in enumerate(("edge_a", "edge_x", "edge_c"))},
        # the querying network's RTTs, and edge_a over its threshold
        "records": [f"127-0-0-0-8.{c}.rtt 0 TXT {rtt}" for c, rtt in
                    (("edge_a", 6), ("edge_x", 13), ("edge_c", 44))]
        + ["edge_a.load 0 TXT 0.9"], "seed": 1}


def _knot_files(work: Path, port: int) -> Path:
    """Knot's configuration and a static zone answering the service name as the redirector
    answers it (edge_a's two addresses, the same TTL)."""
    zone = work / "knot.zone"
    zone.write_text(f"$ORIGIN {ZONE}\n$TTL {DNS_TTL_S}\n"
                    "@ SOA ns1 hostmaster 1 60 30 3600 5\n@ NS ns1\nns1 A 127.0.0.1\n"
                    f"{SERVICE_LABEL} A 10.9.0.2\n{SERVICE_LABEL} A 10.9.0.3\n")
    config = work / "knot.conf"
    config.write_text(f"server:\n    listen: 127.0.0.1@{port}\n    rundir: {work}\n"
                      "    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n"
                      f"database:\n    storage: {work}\n"
                      "log:\n  - target: stderr\n    any: warning\n"
                      f"zone:\n  - domain: {ZONE}\n    file: {zone}\n")
    return config


def run(seconds: float, rounds: int = 3) -> int:
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        raise EnvironmentProblem("bench dns pins server and load to different cores: "
                                 "it needs at least 2")
    if shutil.which("knotd") is None:
        raise EnvironmentProblem("bench dns measures Knot DNS beside the redirector: install "
                                 "Debian's knot (sudo make setup)")
    with tempfile.TemporaryDirectory(prefix="cdnlab-bench-dns-") as tmp:
        work = Path(tmp)
        queries = work / "queries"
        queries.write_text(f"{SERVICE} A\n")
        measured: dict[str, list[PerfResult]] = {}
        for _ in range(rounds):
            for name, argv in (("redirector", [sys.executable, "-m", "nodes.dns",
                                               "--decisions", str(work / "decisions.jsonl")]),
                               ("dnslib-stock", [sys.executable, "-m",
                                                 "cdnlab.bench.dns_stock"]),
                               ("knot", ["knotd"])):
                port = _free_port()
                if name == "knot":
                    argv = [*argv, "-c", str(_knot_files(work, port))]
                else:
                    path = work / f"{name}.yaml"
                    path.write_text(yaml.safe_dump(_config(port)))
                    argv = [*argv, "--config", str(path)]
                measured.setdefault(name, []).append(
                    _measure(name, argv, port, work, queries, seconds))
    results = {name: _median(name, runs) for name, runs in measured.items()}
    ours, base, knot = results["redirector"], results["dnslib-stock"], results["knot"]
    print(f"dns: {seconds:g} s of dnsperf per server and round, {rounds} round(s), medians; "
          f"server on CPU {SERVER_CPU}, dnsperf on CPU {LOAD_CPU}; one question (A); "
          "latency at half the server's own rate")
    print(f"{'server':<14}{'queries/s':>11}{'mean ms':>9}{'p99 ms':>8}{'lost %':>8}"
          f"{'× baseline':>12}{'× knot':>8}")
    for result in results.values():
        print(f"{result.name:<14}{result.qps:>11.0f}{result.mean_ms:>9.3f}{result.p99_ms:>8.3f}"
              f"{result.lost_pct:>8.2f}{result.qps / base.qps:>12.2f}"
              f"{result.qps / knot.qps:>8.2f}")
    verdict = "meets" if ours.qps >= KNOT_TARGET * knot.qps else "misses"
    print(f"dns: the redirector {verdict} its target of {KNOT_TARGET:g} × Knot's queries/s "
          f"on one core ({ours.qps / knot.qps:.2f})")
    print(f"dns: qps={ours.qps:.0f} p99_ms={ours.p99_ms:.3f} baseline_qps={base.qps:.0f} "
          f"knot_qps={knot.qps:.0f}")
    return 0


def _median(name: str, runs: list[PerfResult]) -> PerfResult:
    return PerfResult(name, statistics.median(r.qps for r in runs),
                      statistics.median(r.mean_ms for r in runs),
                      statistics.median(r.p99_ms for r in runs),
                      statistics.median(r.lost_pct for r in runs))


def _measure(name: str, argv: list[str], port: int, work: Path, queries: Path,
             seconds: float) -> PerfResult:
    with (work / f"{name}.stderr").open("wb") as errors:
        process = subprocess.Popen(["taskset", "-c", SERVER_CPU, *argv], stderr=errors)
    try:
        _wait_answering(port, process)
        return _dnsperf(name, port, queries, seconds)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
