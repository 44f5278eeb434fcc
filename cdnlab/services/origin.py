"""The origin service: `python -m nodes.origin serve` on the topology's origin host, serving
a content store over HTTP (nginx, port 80) and taking uploads (port 8080)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdnlab.services.base import NodeProgram
from nodes.common.conventions import ORIGIN_HTTP_PORT, ORIGIN_INGEST_PORT

HTTP_PORT = ORIGIN_HTTP_PORT
INGEST_PORT = ORIGIN_INGEST_PORT


class OriginService(NodeProgram):
    part = "origin"

    def __init__(self, emu: Any, store: Path, host: str = "origin",
                 spec_file: Path | None = None, slow_kbps: tuple[int, ...] = ()) -> None:
        """`slow_kbps`: the rates a timeline `origin_fault` may cap responses at."""
        self.store = store
        address = emu.ip(host)
        work = Path(emu.run_dir) / "work" / host
        self.fault_dir = work / "faults"  # flag files switch faults on (conventions)
        args = ["serve", "--store", str(store), "--address", address,
                "--http-port", str(HTTP_PORT), "--ingest-port", str(INGEST_PORT),
                "--work", str(work), "--node", host, "--epoch", f"{emu.t0:.6f}",
                "--events", str(Path(emu.run_dir) / "events" / f"{host}.jsonl")]
        if spec_file is not None:
            args += ["--spec", str(spec_file)]
        args += [f"--slow-kbps={k}" for k in slow_kbps]
        super().__init__(emu, host, "nodes.origin", args, host)
        self.address = address

    @property
    def url(self) -> str:
        return f"http://{self.address}:{HTTP_PORT}"

    @property
    def ingest_url(self) -> str:
        return f"http://{self.address}:{INGEST_PORT}"

    def start(self) -> None:
        super().start()
        self.wait_http(f"{self.ingest_url}/healthz")
        self.wait_http(f"{self.url}/catalog.json")
