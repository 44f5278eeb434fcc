"""`cdnlab bench dns`: queries per second and latency of the redirector under dnsperf.

Both servers run on loopback pinned to one core (taskset), with dnsperf pinned to the
other: first the redirector (`python -m nodes.dns`, asyncio loop, fast path, decision log
on), then, as the baseline measured in the same run, the same resolver behind dnslib's
stock threaded server. Both hold the same zone: three clusters with RTTs to the querying
network, so every answer runs the `min_rtt_spill` policy.

Two dnsperf runs per server: throughput (as fast as it answers, 100 queries outstanding),
then latency at half that rate, from dnsperf's per-query log (-v), so the percentiles show
the server and not the queue dnsperf builds when it saturates it.
"""

from __future__ import annotations

import os
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


def run(seconds: float) -> int:
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        raise EnvironmentProblem("bench dns pins server and load to different cores: "
                                 "it needs at least 2")
    with tempfile.TemporaryDirectory(prefix="cdnlab-bench-dns-") as tmp:
        work = Path(tmp)
        queries = work / "queries"
        queries.write_text(f"{SERVICE} A\n")
        results = []
        for name, argv in (("redirector", ["-m", "nodes.dns", "--decisions",
                                           str(work / "decisions.jsonl")]),
                           ("dnslib-stock", ["-m", "cdnlab.bench.dns_stock"])):
            port = _free_port()
            config = {
                "zone": ZONE, "listen": {"address": "127.0.0.1", "port": port},
                "services": {SERVICE_LABEL: {"policy": DNS_POLICY, "ttl": DNS_TTL_S}},
                "clusters": {c: {"addresses": [f"10.9.{i}.2", f"10.9.{i}.3"]}
                             for i, c in enumerate(("edge_a", "edge_x", "edge_c"))},
                # the querying network's RTTs, and edge_a over its threshold
                "records": [f"127-0-0-0-8.{c}.rtt 0 TXT {rtt}" for c, rtt in
                            (("edge_a", 6), ("edge_x", 13), ("edge_c", 44))]
                + ["edge_a.load 0 TXT 0.9"], "seed": 1}
            results.append(_measure(name, argv, config, work, queries, seconds))
    ours, base = results
    print(f"dns: {seconds:g} s of dnsperf per server; server on CPU {SERVER_CPU}, dnsperf "
          f"on CPU {LOAD_CPU}; one question (A, min_rtt_spill policy); latency at half the "
          "server's own rate")
    print(f"{'server':<14}{'queries/s':>11}{'mean ms':>9}{'p99 ms':>8}{'lost %':>8}"
          f"{'× baseline':>12}")
    for result in results:
        print(f"{result.name:<14}{result.qps:>11.0f}{result.mean_ms:>9.3f}{result.p99_ms:>8.3f}"
              f"{result.lost_pct:>8.2f}{result.qps / base.qps:>12.2f}")
    print(f"dns: qps={ours.qps:.0f} p99_ms={ours.p99_ms:.3f} baseline_qps={base.qps:.0f}")
    return 0



def _measure(name: str, argv: list[str], config: dict[str, object], work: Path,
             queries: Path, seconds: float) -> PerfResult:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    port = int(config["listen"]["port"])  # type: ignore[index]
    with (work / f"{name}.stderr").open("wb") as errors:
        process = subprocess.Popen(["taskset", "-c", SERVER_CPU, sys.executable, *argv,
                                    "--config", str(path)], stderr=errors)
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
