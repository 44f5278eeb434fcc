"""Edge servers: `python -m nodes.edge serve` on each server host of a cluster, in pull mode
(nginx proxy_cache in front of a parent) or push mode (serving what the fill agent placed
in its own store). nginx's own processes are added to the run's ledger once it serves.

A pull edge a `fill_cache` fault names gets its cache on a filesystem of its own (a tmpfs
of the cache's size, in the run's ledger), which the fault fills to the last byte and
frees again; nginx then fails every cache write (`pwritev() ... No space left on device`,
measured from its error log), so misses break off mid-response while hits are served."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cdnlab.net.shaping.base import machine_of, run_in
from cdnlab.services.base import NodeProgram
from nodes.common.conventions import HTTP_PORT, SHED_ABOVE

FILL_PORT = 8081
FILLER = ".cdnlab-filler"  # the file a fill_cache fault fills the cache filesystem with
# nginx's error-log lines for a cache write the disk refused (a whole or a short write)
CACHE_WRITE_FAILED = "No space left on device|has written only"


class EdgeService(NodeProgram):
    part = "edges"

    def __init__(self, emu: Any, host: str, mode: str = "pull", parent: str | None = None,
                 redirect_to: str | None = None, miss: str = "redirect",
                 cache_size_mb: int = 1024, capacity_mbps: float = 1000.0,
                 threshold: float = SHED_ABOVE, max_connections: int = 0,
                 interval_s: float = 1.0, cmsd: bool = False,
                 duress_above: float | None = None, window_s: float | None = None,
                 siblings: tuple[str, ...] = ()) -> None:
        self._again = (emu, host, mode, parent, redirect_to, miss, cache_size_mb,
                       capacity_mbps, threshold, max_connections, interval_s, cmsd,
                       duress_above, window_s, siblings)
        cluster = emu.topology.nodes[host].cluster
        if cluster is None:
            raise ValueError(f"{host} is not an edge server")
        self.address = emu.ip(host)
        self.cluster = cluster
        self.mode = mode
        self.work = Path(emu.run_dir) / "work" / host
        self.store = Path(emu.run_dir) / "edge_store" / host if mode == "push" else None
        # all addresses: clients reach it on the host's, its monitor on loopback
        args = ["serve", "--cluster", cluster, "--mode", mode, "--work", str(self.work),
                "--address", "0.0.0.0", "--cache-size-mb", str(cache_size_mb),
                "--capacity-mbps", f"{capacity_mbps:g}", "--threshold", f"{threshold:g}",
                "--max-connections", str(max_connections), "--interval", f"{interval_s:g}",
                "--miss", miss, "--fill-port", str(FILL_PORT), "--node", host,
                "--epoch", f"{emu.t0:.6f}",
                "--events", str(Path(emu.run_dir) / "events" / f"{host}.jsonl")]
        if parent:
            args += ["--parent", parent]
        if redirect_to:
            args += ["--redirect-to", redirect_to]
        if self.store is not None:
            args += ["--store", str(self.store)]
        if cmsd:
            args.append("--cmsd")
        if duress_above is not None:
            args += ["--duress-above", f"{duress_above:g}"]
        if window_s is not None:
            args += ["--window", f"{window_s:g}"]
        for sibling in siblings:  # the cluster's other servers, whose load CMSD adds up
            args += ["--sibling", f"http://{emu.ip(sibling)}:{HTTP_PORT}/load"]
        super().__init__(emu, host, "nodes.edge", args, host)

    def set_capacity(self, mbps: float) -> None:
        """The capacity the load monitor divides by from its next sample on (a restarted
        edge keeps it: the file stays in the work directory)."""
        self.work.mkdir(parents=True, exist_ok=True)
        written = self.work / "capacity_mbps.tmp"
        written.write_text(f"{mbps:g}\n")
        written.replace(self.work / "capacity_mbps")

    def again(self) -> EdgeService:
        """A new, not yet started service with the same settings (a restart after a
        failure; a push edge keeps what was filled)."""
        return EdgeService(*self._again)

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def fill_endpoint(self) -> str:
        return f"{self.address}:{FILL_PORT}"

    @property
    def access_log(self) -> Path:
        return self.events / f"{self.host}.access.jsonl"

    def start(self) -> None:
        (self.work / "nginx.pids").unlink(missing_ok=True)  # a restart's are new
        super().start()
        self.wait_http(f"{self.url}/load")
        # nginx answers as soon as it listens, a moment before the edge program writes
        # its PIDs: wait for them, so the ledger (and a test) always holds nginx's
        pids = self.work / "nginx.pids"
        deadline = time.monotonic() + 10
        while not pids.exists() and self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids.read_text().split() if pids.exists() else []:
            self.emu.ledger.add_process(int(pid), f"nginx of {self.host}")

    @property
    def cache_dir(self) -> Path:
        return self.work / "cache"  # nodes/edge/sites.py EdgeSite.cache_dir

    def own_cache_filesystem(self, size_mb: int) -> None:
        """The cache directory as a tmpfs of `size_mb` MiB (recorded in the ledger first),
        before nginx starts, so filling it fills no other disk."""
        node = self.emu.node(self.host)
        self.emu.ledger.add_mount(self.cache_dir, machine_of(node))
        run_in(node, f"mkdir -p {self.cache_dir} && mount -t tmpfs -o "
                     f"size={size_mb}m,mode=0700 cdnlab-edge-cache {self.cache_dir}")

    def fill_cache(self) -> int:
        """Fill the cache filesystem to the last byte; the bytes left free (0)."""
        filler = self.cache_dir / FILLER
        free = f"$(($(stat -f -c '%a*%S' {self.cache_dir})))"
        return int(run_in(self.emu.node(self.host),
                          f"fallocate -l {free} {filler} 2>/dev/null; "
                          f"cat /dev/zero >> {filler} 2>/dev/null; echo {free}").strip())

    def free_cache(self) -> None:
        run_in(self.emu.node(self.host), f"rm -f {self.cache_dir / FILLER}")

    def cache_writes_failed(self) -> int:
        """Cache writes nginx's error log says the disk refused, so far."""
        return int(run_in(self.emu.node(self.host),
                          f"grep -cE '{CACHE_WRITE_FAILED}' {self.work / 'error.log'} "
                          "|| true").strip() or 0)
