"""RTT probes, one per edge cluster, on the cluster's first server: they measure every
client network and push the results to the redirector with signed UPDATEs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdnlab.services.base import NodeProgram
from cdnlab.services.dns import DnsService, client_networks
from nodes.common.conventions import HTTP_PORT, PROBE_INTERVAL_S, PROBE_METHOD, TSIG_KEY_NAME, ZONE


class ProbeService(NodeProgram):
    part = "probes"

    def __init__(self, emu: Any, dns: DnsService, cluster: str,
                 interval_s: float = PROBE_INTERVAL_S, method: str = PROBE_METHOD,
                 count: int = 5, alpha: float = 0.5, load: bool = False) -> None:
        """`load`: also report the cluster's load, read from every server's `/load`."""
        servers = emu.topology.clusters()[cluster]
        host = servers[0]
        targets = [f"--target={net}={addr}" for net, addr in client_networks(emu).items()]
        args = ["--cluster", cluster, "--dns", f"{dns.address}:53", "--zone", ZONE,
                "--key-name", TSIG_KEY_NAME, "--key-file", str(dns.key_file), *targets,
                "--method", method, "--interval", f"{interval_s:g}", "--count", str(count),
                "--alpha", f"{alpha:g}", "--node", f"probe_{cluster}",
                "--epoch", f"{emu.t0:.6f}",
                "--events", str(Path(emu.run_dir) / "events" / f"probe_{cluster}.jsonl")]
        if load:
            args += [f"--load-url=http://{emu.ip(s)}:{HTTP_PORT}/load" for s in servers]
        super().__init__(emu, host, "nodes.probe", args, f"probe_{cluster}")
        self.cluster = cluster
        self.interval_s = interval_s
