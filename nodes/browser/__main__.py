"""`python -m nodes.browser --service NAME --plan FILE --events FILE --summary FILE …`

Browser viewers on one emulated host: each planned session is dash.js in its own headless
Chromium (`driver.mjs` through Node), started at its `start_s`. Chromium resolves the
service name as any program on the host does, from the host's resolver configuration:
`--resolv-conf FILE` is bind-mounted over /etc/resolv.conf in a private mount namespace
(`unshare --mount`) that only that browser sees. The driver's raw dash.js events are kept in
`<raw-dir>/<node>-browser-<session>.dashjs.jsonl` and turned into the Python player's records
(`records.py`): `session_start`, `segment`, `audio_segment`, `session_end` (QoE metrics, the
end event dash.js gave, and the viewer's CPU and memory, `usage.py`). `--summary FILE` gets
every session's metrics. Exits 0 when every session completed, 1 otherwise, 2 on bad
arguments or when Chromium or the pinned Node packages are missing.

A plan is a YAML/JSON list of sessions: {id, title, start_s, segments, max_buffer_s,
segment_s, abr_params (dash.js settings merged over cdnlab's), timeout_s, manifest (the
title's MPD: steered.mpd for content steering), cmsd (read the edges' CMSD)}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from nodes.browser.records import convert
from nodes.browser.usage import TreeUsage, tree
from nodes.client.__main__ import parse_clusters, report_sessions
from nodes.client.failures import OTHER
from nodes.common.conventions import BATCH_NICE, BROWSER_ABR, MAX_BUFFER_S
from nodes.common.events import EventLog, stderr_line

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "driver.mjs"
CHROMIUM = "/usr/bin/chromium"
SAMPLE_S = 0.5
# the resolver configuration goes over /etc/resolv.conf for this process tree only
BIND_RESOLV = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'


def missing_parts(chromium: str) -> list[str]:
    """What a browser viewer needs and this machine lacks, each with the fix."""
    missing = []
    if not Path(chromium).exists():
        missing.append(f"Chromium at {chromium} (sudo make browser installs Debian's)")
    if shutil.which("node") is None:
        missing.append("node (sudo make browser installs Debian's nodejs)")
    for package in ("dashjs", "puppeteer-core"):
        if not (HERE / "node_modules" / package / "package.json").exists():
            missing.append(f"the pinned {package} in {HERE / 'node_modules'} "
                           "(sudo make browser runs npm ci there)")
    return missing


class Viewer:
    """One session: its Chromium, its raw events, its usage."""

    def __init__(self, spec: dict[str, Any], args: argparse.Namespace, log: EventLog,
                 clusters: dict[str, str]) -> None:
        self.spec = spec
        self.args = args
        self.log = log
        self.clusters = clusters
        self.id = str(spec["id"])
        self.work = Path(args.work)
        self.raw: list[dict[str, Any]] = []
        self.process: asyncio.subprocess.Process | None = None

    def _config(self) -> Path:
        service = self.args.service.rstrip(".")
        config = {
            "chromium": self.args.chromium, "profile": str(self.work / f"chromium-{self.id}"),
            "mpd_url": f"http://{service}/{self.spec['title']}/"
                       f"{self.spec.get('manifest') or 'manifest.mpd'}",
            "cmsd": bool(self.spec.get("cmsd")), "host_rules": self.args.host_rules,
            "session": self.id, "title": self.spec["title"],
            "max_buffer_s": float(self.spec.get("max_buffer_s") or MAX_BUFFER_S),
            "segments": self.spec.get("segments"),
            "segment_s": self.spec.get("segment_s"),
            "settings": self.spec.get("abr_params") or {},
            "timeout_s": float(self.spec.get("timeout_s") or 600)}
        path = self.work / f"browser-{self.id}.json"
        path.write_text(json.dumps(config, indent=1))
        return path

    def _argv(self, config: Path) -> list[str]:
        driver = ["nice", "-n", str(BATCH_NICE), "node", str(DRIVER), str(config)]
        if not self.args.resolv_conf:
            return driver
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                BIND_RESOLV, str(Path(self.args.resolv_conf).resolve()), *driver]

    async def run(self, started: float) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, float(self.spec.get("start_s") or 0) -
                                (time.monotonic() - started)))
        launched = time.time()
        self.log.emit("session_start", session=self.id, title=self.spec["title"],
                      algo=BROWSER_ABR, player="dashjs")
        self.process = await asyncio.create_subprocess_exec(
            *self._argv(self._config()), stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        usage = TreeUsage(self.process.pid)
        sampler = asyncio.create_task(self._sample(usage))
        raw_path = Path(self.args.raw_dir or self.work) / \
            f"{self.args.node}-browser-{self.id}.dashjs.jsonl"
        assert self.process.stdout is not None
        with raw_path.open("w") as raw_out:
            async for line in self.process.stdout:
                raw_out.write(line.decode(errors="replace"))
                with contextlib.suppress(ValueError):
                    self.raw.append(json.loads(line))
        await self.process.wait()
        sampler.cancel()
        result = convert(self.raw, self.id, self.spec["title"], BROWSER_ABR, self.clusters,
                         self.spec.get("segment_s"), self.spec.get("segments"))
        for wall, event, fields in result.records:
            self.log.emit_at(wall, event, **fields)
        browser = next((e for e in self.raw if e["kind"] == "browser"), {})
        page = next((e for e in self.raw if e["kind"] == "session_start"), {})
        metrics = result.metrics | {
            "browser": browser.get("version"), "dashjs": page.get("version"),
            "launch_s": round(page["wall"] - launched, 3) if page else None,
            "usage": usage.figures(), "driver_exit": self.process.returncode}
        if self.process.returncode and metrics["completed"]:
            metrics |= {"completed": False, "error": f"driver exit {self.process.returncode}",
                        "failure": OTHER}
        self.log.emit("session_end", **metrics)
        shutil.rmtree(self.work / f"chromium-{self.id}", ignore_errors=True)
        return metrics

    async def _sample(self, usage: TreeUsage) -> None:
        while True:
            usage.sample()
            await asyncio.sleep(SAMPLE_S)

    def kill(self) -> None:
        """End the whole tree: the driver first (it closes Chromium), then what is left."""
        if self.process is None or self.process.returncode is not None:
            return
        pids = tree(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        time.sleep(1.0)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def run_all(specs: list[dict[str, Any]], args: argparse.Namespace, log: EventLog,
                  clusters: dict[str, str]) -> list[dict[str, Any]]:
    started = time.monotonic()
    viewers = [Viewer(spec, args, log, clusters) for spec in specs]
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    everything = asyncio.gather(*(v.run(started) for v in viewers))
    stopper = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([everything, stopper], return_when=asyncio.FIRST_COMPLETED)
    if not everything.done():  # SIGTERM: end every browser; each session still logs its end
        for viewer in viewers:
            viewer.kill()
        await asyncio.wait([everything], timeout=10)
    stopper.cancel()
    return list(everything.result()) if everything.done() and not everything.exception() \
        else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes.browser", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", required=True, help="e.g. video.cdn.lab")
    parser.add_argument("--resolv-conf", help="the host's resolver configuration")
    parser.add_argument("--plan", required=True, help="YAML/JSON list of sessions")
    parser.add_argument("--work", required=True, help="configs and browser profiles")
    parser.add_argument("--raw-dir", help="where each session's raw dash.js events go "
                                          "(default: --work)")
    parser.add_argument("--cluster", action="append", default=[],
                        help="NAME=ADDR[,ADDR…]: name the cluster of a server in logs")
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--host-rules", help="Chromium's --host-resolver-rules (e.g. 'MAP "
                                             "video.cdn.lab 127.0.0.2'): names mapped "
                                             "without DNS, for viewers on loopback")
    parser.add_argument("--events")
    parser.add_argument("--summary")
    parser.add_argument("--node", default="client")
    parser.add_argument("--epoch", type=float)
    args = parser.parse_args(argv)
    try:
        specs = yaml.safe_load(Path(args.plan).read_text())
        if not isinstance(specs, list) or not specs:
            raise ValueError(f"{args.plan}: a plan is a non-empty list of sessions")
        clusters = parse_clusters(args.cluster)
    except (OSError, ValueError, yaml.YAMLError) as err:
        stderr_line(f"browser: {err}")
        return 2
    missing = missing_parts(args.chromium)
    if missing:
        stderr_line(f"browser: missing {'; '.join(missing)}")
        return 2
    Path(args.work).mkdir(parents=True, exist_ok=True)
    log = EventLog(Path(args.events) if args.events else None, args.node, args.epoch)
    try:
        results = asyncio.run(run_all(specs, args, log, clusters))
    finally:
        log.close()
    return report_sessions("browser", args.summary, args.node, results, len(specs))


if __name__ == "__main__":
    sys.exit(main())
