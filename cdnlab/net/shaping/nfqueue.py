"""The `nfqueue` shaping backend, for kernels without sch_netem.

Rate is htb on each end's egress interface, as Mininet would put it. Delay, jitter and loss
happen in a link namespace in the middle of the wire, where TCP Small Queues no longer
charges held packets to the sender's socket (see shared notes, "Where to hook"):

    node_a:intf ⇄ veth ⇄ [link ns L<i>: bridge; FORWARD → NFQUEUE 0 / 1] ⇄ veth ⇄ node_b:intf

iptables sends packets entering from a's side to queue 0 (a_to_b) and from b's side to
queue 1 (b_to_a). One compiled delay server per machine (`delayd.c`, `DelayServer` here)
serves the queues of every link namespace on that machine with one timer, so a wake-up
releases what is due on all links at once. A link whose two directions have no delay,
jitter or loss gets no link namespace (a plain veth) unless asked for one, so unimpaired
links cost nothing extra.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from typing import Any

from cdnlab.net.node_classes import LinkBox
from cdnlab.net.shaping import helper, htb
from cdnlab.net.shaping.base import (
    DIRECTIONS,
    Backend,
    BuildContext,
    ShapedLink,
    local_pid,
    machine_of,
    run_in,
)
from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import Link

QUEUE_OF = {"a_to_b": 0, "b_to_a": 1}
READY_TIMEOUT_S = 15.0


class DelayServer:
    """The delay server of one machine: its config (every link namespace there and the
    impairment of each direction), its process and its log. Started once every link is
    known (the first `launch`), stopped when the last of its links stops."""

    def __init__(self, ctx: BuildContext, machine: str | None) -> None:
        self.ctx = ctx
        self.machine = machine
        suffix = f".{machine}" if machine else ""
        self.config_path = ctx.run_dir / "links" / f"delayd{suffix}.conf"
        self.log_path = ctx.run_dir / "events" / f"delayd{suffix}.jsonl"
        self.links: list[NfqueueLink] = []
        self.active: set[str] = set()
        self.process: subprocess.Popen[bytes] | None = None
        self.ready = False

    def config_text(self) -> str:
        lines = ["# cdnlab-delayd: link NAME PID SEED / queue NUMBER DELAY_MS JITTER_MS LOSS_PCT"]
        for link in self.links:
            assert link.box is not None
            lines.append(f"link {link.box.name} {link.box.pid} "
                         f"{self.ctx.seed * 1000 + link.spec.index}")
            lines += [f"queue {QUEUE_OF[d]} {link.applied(s).delay:g} {s.jitter:g} {s.loss:g}"
                      for d, s in link.shapes.items()]
        return "\n".join(lines) + "\n"

    def write_config(self) -> None:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self.config_text())
        tmp.replace(self.config_path)

    def launch(self) -> None:
        if self.process is not None or not self.links:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.write_config()
        args = ["--config", str(self.config_path), "--log", str(self.log_path),
                "--t0", repr(self.ctx.t0)]
        argv = ([sys.executable, "-m", "cdnlab.net.shaping.helper", "exec", "--", *args]
                if self.machine else [str(helper.ensure_built()), *args])
        # started in the first link's namespace; it enters every other one by PID
        box = self.links[0].box
        assert box is not None
        self.process = box.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        where = f" on {self.machine}" if self.machine else ""
        self.ctx.ledger.add_process(self.process.pid,
                                    f"delay server{where} ({len(self.links)} links)")
        self.ctx.ledger.join_part(self.process.pid, "delay")

    def wait_ready(self, deadline: float) -> None:
        if self.ready or self.process is None:
            return
        assert self.process.stdout is not None and self.process.stderr is not None
        ready, _, _ = select.select([self.process.stdout], [], [],
                                    max(0.0, deadline - time.monotonic()))
        line = self.process.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.process.kill()
            self.process.wait()
            problem = self.process.stderr.read().decode(errors="replace").strip()
            raise RuntimeError(f"the delay server{f' on {self.machine}' if self.machine else ''}"
                               f" did not start: {problem or 'no ready line'}")
        self.ready = True

    def reload(self) -> None:
        """New impairments in force for packets that arrive from now on."""
        self.write_config()
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)

    def release(self, link: NfqueueLink) -> None:
        """`link` no longer needs serving; the last one stops the server (it accepts what
        it holds, then exits)."""
        self.active.discard(link.name)
        if self.active or self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class NfqueueLink(ShapedLink):
    def __init__(self, spec: Link, node_a: Any, node_b: Any, intf_a: str, intf_b: str,
                 box: LinkBox | None, server: DelayServer | None) -> None:
        super().__init__(spec, node_a, node_b, intf_a, intf_b)
        self.box = box
        self.server = server
        self.rules: list[str] = []
        self.htb_on: set[str] = set()
        if box is not None and server is not None:
            self.ports = {"a_to_b": f"{box.name}-a", "b_to_a": f"{box.name}-b"}
            server.links.append(self)
            server.active.add(self.name)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The delay server serving this link (shared with every delayed link of its
        machine)."""
        return self.server.process if self.server else None

    @property
    def config_path(self) -> Any:
        return self.server.config_path if self.server else None

    @property
    def log_path(self) -> Any:
        return self.server.log_path if self.server else None

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

    # -- delay server ----------------------------------------------------------------------
    def launch(self) -> None:
        """Start the machine's delay server if no link did yet (does not wait)."""
        if self.server is not None:
            self.server.launch()

    def wait_ready(self, deadline: float) -> None:
        if self.server is None or self.box is None:
            return
        self.server.wait_ready(deadline)
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
        if self.server is not None and (shape.delay, shape.jitter, shape.loss) != (
                old.delay, old.jitter, old.loss):
            self.server.reload()

    def stop(self) -> None:
        if self.box is not None:
            for rule in self.rules:
                self.box.cmd(f"iptables -w {rule}")
            self.rules.clear()
        if self.server is not None:
            self.server.release(self)

    def extra_processes(self) -> list[int]:
        return [self.process.pid] if self.process else []


class NfqueueBackend(Backend):
    name = "nfqueue"

    def __init__(self) -> None:
        helper.ensure_built()  # a missing compiler is said before any network is built
        self.servers: dict[str | None, DelayServer] = {}

    def connect(self, ctx: BuildContext, spec: Link, node_a: Any, node_b: Any,
                intf_a: str, intf_b: str, boxed: bool) -> ShapedLink:
        if not (boxed or spec.a_to_b.impaired or spec.b_to_a.impaired):
            ctx.link(node_a, node_b, intf_a, intf_b)
            return NfqueueLink(spec, node_a, node_b, intf_a, intf_b, None, None)
        params = ctx.box_params(node_a) if ctx.box_params else {"cls": LinkBox}
        box = ctx.net.addHost(f"L{spec.index}", ip=None, **params)
        ctx.ledger.add_process(local_pid(box), f"link namespace {box.name}")
        ctx.link(node_a, box, intf_a, f"{box.name}-a")
        ctx.link(box, node_b, f"{box.name}-b", intf_b)
        machine = machine_of(box)
        server = self.servers.get(machine)
        if server is None or server.ctx is not ctx:
            server = self.servers[machine] = DelayServer(ctx, machine)
        return NfqueueLink(spec, node_a, node_b, intf_a, intf_b, box, server)
