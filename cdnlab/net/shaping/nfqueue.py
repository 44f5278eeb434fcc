"""The `nfqueue` shaping backend, for kernels without sch_netem.

Rate is htb on each end's egress interface, as Mininet would put it. Delay, jitter and loss
happen in a link namespace in the middle of the wire, where TCP Small Queues no longer
charges held packets to the sender's socket (see shared notes, "Where to hook"):

    node_a:intf ⇄ veth ⇄ [link ns L<i>: bridge; FORWARD → NFQUEUE 0 / 1] ⇄ veth ⇄ node_b:intf

iptables sends packets entering from a's side to queue 0 (a_to_b) and from b's side to
queue 1 (b_to_a); one `delayd` process per link namespace serves both. A link whose two
directions have no delay, jitter or loss gets no link namespace (a plain veth) unless asked
for one, so unimpaired links cost nothing extra.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from typing import Any

from cdnlab.net.node_classes import LinkBox
from cdnlab.net.shaping import htb
from cdnlab.net.shaping.base import DIRECTIONS, Backend, BuildContext, ShapedLink, local_pid, run_in
from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import Link

QUEUE_OF = {"a_to_b": 0, "b_to_a": 1}
READY_TIMEOUT_S = 15.0


class NfqueueLink(ShapedLink):
    def __init__(self, spec: Link, node_a: Any, node_b: Any, intf_a: str, intf_b: str,
                 box: LinkBox | None, ctx: BuildContext) -> None:
        super().__init__(spec, node_a, node_b, intf_a, intf_b)
        self.box = box
        self.ctx = ctx
        self.process: subprocess.Popen[bytes] | None = None
        self.rules: list[str] = []
        self.htb_on: set[str] = set()
        if box is not None:
            self.ports = {"a_to_b": f"{box.name}-a", "b_to_a": f"{box.name}-b"}
            self.config_path = ctx.run_dir / "links" / f"{box.name}.json"
            self.log_path = ctx.run_dir / "events" / f"{box.name}.jsonl"

    # -- rate ----------------------------------------------------------------------------
    def _apply_rate(self, direction: str, rate: float | None) -> None:
        node, intf = self.egress(direction)
        if rate is None:
            if direction in self.htb_on:
                run_in(node, f"tc qdisc del dev {intf} root")
                self.htb_on.discard(direction)
            return
        if direction in self.htb_on:
            run_in(node, htb.change_rate_command(intf, rate))
            return
        htb.install(node, intf, rate, htb.fifo(self.shapes[direction].queue))
        self.htb_on.add(direction)

    # -- delay process ---------------------------------------------------------------------
    def _write_config(self) -> None:
        queues = {str(QUEUE_OF[d]): {"delay_ms": self.applied(s).delay, "jitter_ms": s.jitter,
                                     "loss_pct": s.loss} for d, s in self.shapes.items()}
        payload = {"seed": self.ctx.seed * 1000 + self.spec.index, "queues": queues}
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(self.config_path)

    def launch(self) -> None:
        """Start the delay process (does not wait for it: see `wait_ready`)."""
        if self.box is None:
            return
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._write_config()
        argv = [sys.executable, "-m", "cdnlab.net.shaping.delayd", "--config",
                str(self.config_path), "--log", str(self.log_path), "--node", self.box.name,
                "--t0", repr(self.ctx.t0)]
        self.process = self.box.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ctx.ledger.add_process(self.process.pid, f"delayd {self.box.name}")

    def wait_ready(self, deadline: float) -> None:
        if self.process is None or self.box is None:
            return
        assert self.process.stdout is not None and self.process.stderr is not None
        ready, _, _ = select.select([self.process.stdout], [], [],
                                    max(0.0, deadline - time.monotonic()))
        line = self.process.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.process.kill()
            self.process.wait()
            problem = self.process.stderr.read().decode(errors="replace").strip()
            raise RuntimeError(f"delay process of {self.name} did not start: "
                               f"{problem or 'no ready line'}")
        for direction, port in self.ports.items():
            rule = (f"-t mangle -A FORWARD -m physdev --physdev-in {port} "
                    f"-j NFQUEUE --queue-num {QUEUE_OF[direction]}")
            run_in(self.box, f"iptables -w {rule}")
            self.rules.append(rule.replace(" -A ", " -D ", 1))

    # -- ShapedLink ------------------------------------------------------------------------
    def start(self) -> None:
        self.segment_for_loss()
        for direction in DIRECTIONS:
            self._apply_rate(direction, self.shapes[direction].rate)
        if self.box is not None:
            self.box.join_ports(self.ports["a_to_b"], self.ports["b_to_a"])

    def set_shape(self, direction: str, shape: LinkShape) -> None:
        old = self.shapes[direction]
        if shape.impaired and self.box is None:
            raise ValueError(f"link {self.name} was built without a link namespace, so its "
                             "delay, jitter and loss cannot change; declare it dynamic")
        self.shapes[direction] = shape
        self.segment_for_loss()
        if shape.rate != old.rate:
            self._apply_rate(direction, shape.rate)
        elif shape.queue != old.queue and direction in self.htb_on:
            node, intf = self.egress(direction)
            run_in(node, htb.change_queue_command(intf, shape.queue))
        if self.process is not None and (shape.delay, shape.jitter, shape.loss) != (
                old.delay, old.jitter, old.loss):
            self._write_config()
            self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.box is not None:
            for rule in self.rules:
                self.box.cmd(f"iptables -w {rule}")
            self.rules.clear()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def extra_processes(self) -> list[int]:
        return [self.process.pid] if self.process else []


class NfqueueBackend(Backend):
    name = "nfqueue"

    def connect(self, ctx: BuildContext, spec: Link, node_a: Any, node_b: Any,
                intf_a: str, intf_b: str, boxed: bool) -> ShapedLink:
        if not (boxed or spec.a_to_b.impaired or spec.b_to_a.impaired):
            ctx.link(node_a, node_b, intf_a, intf_b)
            return NfqueueLink(spec, node_a, node_b, intf_a, intf_b, None, ctx)
        params = ctx.box_params(node_a) if ctx.box_params else {"cls": LinkBox}
        box = ctx.net.addHost(f"L{spec.index}", ip=None, **params)
        ctx.ledger.add_process(local_pid(box), f"link namespace {box.name}")
        ctx.link(node_a, box, intf_a, f"{box.name}-a")
        ctx.link(box, node_b, f"{box.name}-b", intf_b)
        return NfqueueLink(spec, node_a, node_b, intf_a, intf_b, box, ctx)
