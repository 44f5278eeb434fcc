"""`Emulation`: a topology brought up as a real Mininet network, and torn down again.

The engine's network stage. It chooses the shaping backend and switch datapath from what
the machine offers, creates hosts, routers and switches, wires every link through the
backend, assigns the address plan and installs the computed routes, applies the shapes,
and records everything it creates in a `Ledger`. `stop()` (also on exceptions, Ctrl-C and
SIGTERM, through the context manager) removes exactly what the ledger holds.

    with Emulation(load_topology("minimal")) as emu:
        emu.node("c1").cmd("ping -c1", emu.ip("origin"))
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cdnlab.capabilities import Capabilities, detect
from cdnlab.errors import EnvironmentProblem
from cdnlab.net.ledger import Ledger
from cdnlab.net.replay import TraceReplayer
from cdnlab.net.shaping import choose_backend
from cdnlab.net.shaping.base import BuildContext, ShapedLink, run_in
from cdnlab.net.wakeups import CpuAwake
from cdnlab.topology.addressing import AddressPlan, plan_addresses
from cdnlab.topology.routing import Hop, Routing
from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import HOST, ROUTER, Topology
from cdnlab.traces import BandwidthTrace, load_trace

DATAPATHS = ("auto", "kernel", "user", "bridge")


def choose_datapath(requested: str, caps: Capabilities, openflow: bool = False) -> str:
    """The switch datapath; `openflow` (a controller) needs Open vSwitch, kernel or user."""
    if openflow:
        if requested == "bridge":
            raise EnvironmentProblem("a controller needs Open vSwitch: use --datapath "
                                     "kernel, user or auto")
        if requested == "auto":
            requested = "kernel" if caps.ovs_kernel_module and caps.ovs_daemons else "user"
    if requested == "auto":
        chosen = caps.switch_datapath
        if chosen is None:
            raise EnvironmentProblem("no switch datapath: Open vSwitch is not running and Linux "
                                     "bridges cannot be made (run `cdnlab doctor --fix`)")
        return chosen
    if requested == "kernel" and not (caps.ovs_daemons and caps.ovs_kernel_module):
        raise EnvironmentProblem("--datapath kernel needs the openvswitch kernel module and "
                                 "running OVS daemons; use --datapath user or auto")
    if requested == "user" and not caps.ovs_daemons:
        raise EnvironmentProblem("--datapath user needs Open vSwitch running "
                                 "(run `cdnlab doctor --fix`)")
    if requested not in DATAPATHS:
        raise EnvironmentProblem(f"unknown datapath {requested!r}: use {', '.join(DATAPATHS)}")
    return requested


class _Interrupted(KeyboardInterrupt):
    """SIGTERM during a run: unwind exactly like Ctrl-C, so teardown runs and the CLI
    reports it in one line."""


class Emulation:
    def __init__(self, topology: Topology, shaping: str = "auto", datapath: str = "auto",
                 run_dir: Path | None = None, seed: int = 1,
                 dynamic_links: set[str] | None = None, controller: str | None = None,
                 cpu_awake: str = "auto") -> None:
        if os.geteuid() != 0:
            raise EnvironmentProblem("bringing up a network needs root: run with sudo")
        self.topology = topology
        self.plan: AddressPlan = plan_addresses(topology)
        self.routing = Routing(topology, self.plan)
        caps = detect()
        if not caps.mininet:
            raise EnvironmentProblem("Mininet is not importable: run `sudo make setup`")
        self.backend = choose_backend(shaping, caps)
        self.datapath = choose_datapath(datapath, caps, openflow=controller is not None)
        self.controller_kind = controller
        self.awake = CpuAwake(cpu_awake)  # started with the network: see cdnlab.net.wakeups
        self.controller: Any = None  # cdnlab.net.controller.Controller once started
        self.seed = seed
        self.dynamic_links = dynamic_links or set()
        self.run_id = f"{topology.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.ledger: Ledger | None = None
        self.own_run_dir = run_dir is None
        self.run_dir = run_dir or Path()  # a temporary one is made by start()
        self.net: Any = None
        self.links: dict[str, ShapedLink] = {}
        self.replayers: list[TraceReplayer] = []
        self.services: list[Any] = []  # node programs, stopped first at teardown
        self.t0 = time.time()
        self._previous_sigterm: Any = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Emulation:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def _on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        raise _Interrupted()

    def start(self) -> None:
        from mininet.log import setLogLevel
        from mininet.net import Mininet

        setLogLevel(os.environ.get("CDNLAB_MININET_LOG", "error"))
        self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        self.t0 = time.time()
        self.ledger = Ledger(self.run_id)
        if self.own_run_dir:
            self.run_dir = Path(tempfile.mkdtemp(prefix="cdnlab-"))
            self.ledger.add_directory(self.run_dir)
        try:
            self.awake.start(self.ledger)  # `auto` measures first, on a still quiet machine
            self._refuse_name_clashes()
            self.net = Mininet(topo=None, build=False, controller=None, autoSetMacs=False,
                               waitConnected=False)
            self._add_nodes()
            self._add_links()
            self._start_controller()
            self.net.build()
            self.net.start()
            if self.controller is not None:
                self.controller.tune_switches([s.name for s in self.net.switches])
            self._configure_interfaces()
            self._install_addresses_and_routes()
            self._start_shaping()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Remove everything this run created; safe to call more than once."""
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                service.stop()
        self.services.clear()
        for replayer in self.replayers:
            replayer.stop()
            if replayer.error is not None:
                print(f"cdnlab: trace replay on {replayer.link.name} failed: {replayer.error}",
                      file=sys.stderr)
        for link in self.links.values():
            with contextlib.suppress(Exception):
                link.stop()
        if self.net is not None:
            for remote in list(self.net.controllers):  # Mininet leaves their shells
                with contextlib.suppress(Exception):
                    remote.terminate()
            with contextlib.suppress(Exception):
                self.net.stop()
            self.net = None
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
        self.awake.stop()
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    # -- build -----------------------------------------------------------------------------
    def _refuse_name_clashes(self) -> None:
        """Never adopt (and later delete) an interface or bridge this run did not make."""
        existing = set(os.listdir("/sys/class/net"))
        ours = {n for n in self.topology.nodes if self.topology.kind(n) not in (HOST, ROUTER)}
        ours |= {i.name for i in self.plan.interfaces.values() if i.node in ours}
        clash = sorted(existing & ours)
        if clash:
            raise EnvironmentProblem(f"interfaces {', '.join(clash)} already exist: another "
                                     "run may be active, or one was interrupted (cdnlab clean)")

    def _add_nodes(self) -> None:
        from mininet.node import OVSSwitch

        from cdnlab.net.nodes import EmulatedHost, IpBridge, Router

        assert self.ledger is not None
        for index, node in enumerate(self.topology.nodes.values(), start=1):
            if node.kind == HOST:
                added = self.net.addHost(node.name, cls=EmulatedHost, ip=None)
                self.ledger.add_process(added.pid, f"host {node.name}")
            elif node.kind == ROUTER:
                added = self.net.addHost(node.name, cls=Router, ip=None)
                self.ledger.add_process(added.pid, f"router {node.name}")
            elif self.datapath == "bridge":
                self.ledger.add_linux_bridge(node.name)
                self.net.addSwitch(node.name, cls=IpBridge, dpid=f"{index:016x}")
            else:
                self.ledger.add_ovs_bridge(node.name)
                self.net.addSwitch(node.name, cls=OVSSwitch, dpid=f"{index:016x}",
                                   failMode="standalone", datapath=self.datapath,
                                   protocols="OpenFlow13")

    def _start_controller(self) -> None:
        """With a controller, the switches connect to it over OpenFlow 1.3 (fail mode
        standalone: they keep forwarding without it)."""
        if self.controller_kind is None:
            return
        from mininet.node import RemoteController

        from cdnlab.net.controller import Controller

        assert self.ledger is not None
        self.controller = Controller(self)
        self.controller.start()
        added = self.net.addController("c0", controller=RemoteController, ip="127.0.0.1",
                                       port=self.controller.port)
        self.ledger.add_process(added.pid, "mininet shell of c0")

    def _add_links(self) -> None:
        assert self.ledger is not None
        ctx = BuildContext(self.net, self.run_dir, self.seed, self.t0, self.ledger)
        for link in self.topology.links:
            intf_a = self.plan.interface(link.a, link.index).name
            intf_b = self.plan.interface(link.b, link.index).name
            # switch ports live in the root namespace: record them before they exist
            self.ledger.add_interfaces([intf for end, intf in ((link.a, intf_a), (link.b, intf_b))
                                        if self.topology.kind(end) not in (HOST, ROUTER)])
            shaped = self.backend.connect(ctx, link, self.net.get(link.a),
                                          self.net.get(link.b), intf_a, intf_b,
                                          boxed=link.name in self.dynamic_links)
            self.links[link.name] = shaped

    def _configure_interfaces(self) -> None:
        """Userspace OVS mangles partially checksummed packets: compute checksums in the
        stack instead (TX checksum offload off) on every interface of the run."""
        if self.datapath != "user":
            return
        for node in self.net.hosts:
            names = [i.name for i in node.intfList() if i.name != "lo"]
            if names:
                node.cmd("; ".join(f"ethtool -K {n} tx off >/dev/null 2>&1" for n in names))
        root = [i.name for s in self.net.switches for i in s.intfList() if i.name != "lo"]
        if root:
            subprocess.run(["sh", "-c", "; ".join(f"ethtool -K {n} tx off >/dev/null 2>&1"
                                                   for n in root)], check=False)

    def _install_addresses_and_routes(self) -> None:
        batches = self.run_dir / "routes"
        batches.mkdir(parents=True, exist_ok=True)
        for name, node in self.topology.nodes.items():
            if node.kind not in (HOST, ROUTER):
                continue
            lines = [f"addr add {i.address} dev {i.name}" for i in self.plan.of_node(name)
                     if i.address is not None]
            lines += [f"route add {r.subnet} via {r.via}"
                      for r in self.routing.routes[name].values()]
            batch = batches / f"{name}.ip"
            batch.write_text("\n".join(lines) + "\n")
            run_in(self.net.get(name), f"ip -batch {batch}")

    def _start_shaping(self) -> None:
        for link in self.links.values():
            link.start()
        for link in self.links.values():
            link.launch()
        deadline = time.monotonic() + 15.0
        for link in self.links.values():
            link.wait_ready(deadline)
        for spec in self.topology.links:
            if spec.trace is not None:
                self.replay(spec.a, spec.b, load_trace(spec.trace.path), spec.trace.direction,
                            spec.trace.loop)

    def replay(self, a: str, b: str, trace: BandwidthTrace, direction: str = "both",
               loop: bool = True) -> TraceReplayer:
        """Make the a–b link's rate follow `trace` from now on, until `stop()`."""
        replayer = TraceReplayer(self.link(a, b), trace, direction, loop)
        self.replayers.append(replayer)
        replayer.start()
        return replayer

    def add_service(self, service: Any) -> None:
        """A node program (cdnlab.services) to stop, in reverse order, before teardown."""
        self.services.append(service)

    # -- use -------------------------------------------------------------------------------
    def node(self, name: str) -> Any:
        if name not in self.topology.nodes:
            raise KeyError(f"unknown node {name!r}")
        return self.net.get(name)

    def ip(self, name: str) -> str:
        return str(self.plan.address(name))

    def link(self, a: str, b: str) -> ShapedLink:
        return self.links[self.topology.link(a, b).name]

    def set_shape(self, a: str, b: str, direction: str, shape: LinkShape) -> None:
        self.link(a, b).set_shape(direction, shape)

    def set_link_up(self, a: str, b: str, up: bool) -> None:
        """Cut the a–b link (both ends' interfaces down) or restore it. The kernel drops
        routes through an interface that goes down, so restoring reinstalls every node's
        routes (`ip -force -batch`: those still there are left as they are)."""
        link = self.topology.link(a, b)
        for end in (link.a, link.b):
            name = self.plan.interface(end, link.index).name
            run_in(self.net.get(end), f"ip link set {name} {'up' if up else 'down'}")
        if up:
            for name, node in self.topology.nodes.items():
                if node.kind in (HOST, ROUTER):
                    batch = self.run_dir / "routes" / f"{name}.ip"
                    run_in(self.net.get(name), f"ip -force -batch {batch} 2>/dev/null || true")

    @property
    def shaping(self) -> str:
        return self.backend.name

    def current_shape(self, hop: Hop) -> LinkShape:
        shaped = self.links[hop.link.name]
        return shaped.shapes["a_to_b" if hop.src == hop.link.a else "b_to_a"]

    def expected_rtt_ms(self, src: str, dst: str) -> float:
        """The one-way delays along the routed path there and back, as shaped now."""
        return self.routing.expected_rtt_ms(src, dst, self.current_shape)

    def bottleneck_mbps(self, src: str, dst: str) -> float | None:
        return self.routing.bottleneck_mbps(src, dst, self.current_shape)

    def path_loss_pct(self, src: str, dst: str) -> float:
        return self.routing.path_loss_pct(src, dst, self.current_shape)

    def ping_all(self, count: int = 1, timeout_s: float = 2.0) -> list[tuple[str, str]]:
        """Ping every other L3 host from every host; the pairs that failed."""
        hosts = self.topology.hosts()
        failed: list[tuple[str, str]] = []
        for src in hosts:
            node = self.node(src)
            targets = [h for h in hosts if h != src]
            script = " ".join(
                f"(ping -c{count} -W{timeout_s:g} -q {self.ip(t)} >/dev/null 2>&1 "
                f"|| echo FAIL {t}) &" for t in targets) + " wait"
            out = node.cmd(script)
            failed += [(src, line.split()[1]) for line in out.splitlines()
                       if line.startswith("FAIL ")]
        return failed
