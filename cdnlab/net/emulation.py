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
import tempfile
import time
import uuid
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cdnlab.capabilities import Capabilities, detect
from cdnlab.errors import EnvironmentProblem
from cdnlab.machines.placement import Placement
from cdnlab.machines.placement import place as place_machines
from cdnlab.machines.spec import HEAD, MachineSet
from cdnlab.net import autogroups
from cdnlab.net.build import NetworkBuilder
from cdnlab.net.changes import LinkChanges
from cdnlab.net.cpu_awake import CpuAwake
from cdnlab.net.ledger import Ledger
from cdnlab.net.paths import Paths
from cdnlab.net.shaping import choose_backend
from cdnlab.net.shaping.base import ShapedLink
from cdnlab.topology.addressing import AddressPlan, plan_addresses
from cdnlab.topology.routing import Routing
from cdnlab.topology.spec import Topology

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
                 cpu_awake: str = "auto", machines: MachineSet | None = None) -> None:
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
        self.awake = CpuAwake(cpu_awake)  # started with the network: see cdnlab.net.cpu_awake
        self.autogroups: str | None = None  # cdnlab.net.autogroups.describe, once started
        self.controller: Any = None  # cdnlab.net.controller.Controller once started
        self.seed = seed
        self.dynamic_links = dynamic_links or set()
        self.run_id = f"{topology.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        # a split run (Mininet Cluster Edition): which machine holds each node, and how
        # the nodes reach their machines; None on one machine
        self.machine_set = machines
        self.placement: Placement | None = None
        self.machines: Any = None  # cdnlab.machines.remote.Machines once started
        self.tunnels: dict[str, Any] = {}  # per link between machines, its compensation
        if machines is not None:
            try:
                self.placement = place_machines(topology, machines.machines, machines.place)
            except ValueError as err:
                raise EnvironmentProblem(str(err)) from None
            if controller is not None:
                raise EnvironmentProblem("a controller runs on one machine only: leave out "
                                         "--controller or --cluster")
            if topology.routing == "bgp":
                raise EnvironmentProblem("BGP routers run on one machine only: leave out "
                                         "--cluster, or use routing: static")
            if run_dir is None:
                raise EnvironmentProblem("a split run needs its run directory on storage "
                                         "every machine shares: give one (--out)")
        self.ledger: Ledger | None = None
        self.own_run_dir = run_dir is None
        self.run_dir = run_dir or Path()  # a temporary one is made by start()
        self.net: Any = None
        self.links: dict[str, ShapedLink] = {}
        self.paths = Paths(self.routing, self.links)
        self.changes = LinkChanges(topology, self.link, self.interface, self.node,
                                   lambda: self.routes_dir)
        self.services: list[Any] = []  # node programs, stopped first at teardown
        self.route_differences: list[str] = []  # kernel routes unlike the plan (none yet)
        self.bgp: Any = None  # cdnlab.net.bgp.BgpNetwork of a `routing: bgp` topology
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

        setLogLevel(os.environ.get("CDNLAB_MININET_LOG", "error"))
        self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        self.t0 = time.time()
        self.ledger = Ledger(self.run_id)
        if self.own_run_dir:
            self.run_dir = Path(tempfile.mkdtemp(prefix="cdnlab-"))
            self.ledger.add_directory(self.run_dir)
        try:
            self.ledger.contain()  # from here on every process started is in the run's cgroup
            # one CPU group for every process the run starts, so their priorities hold
            self.autogroups = autogroups.describe(self.ledger.switch_autogroups_off())
            self.awake.start(self.ledger)  # `auto` measures first, on a still quiet machine
            build = NetworkBuilder(self)
            build.refuse_name_clashes()
            self.net = self._mininet()
            build.add_nodes()
            build.add_links()
            build.start_controller()
            self.net.build()
            self.net.start()
            if self.controller is not None:
                self.controller.tune_switches([s.name for s in self.net.switches])
            build.configure_interfaces()
            build.install_addresses_and_routes()
            if self.topology.routing != "bgp":  # BGP's are read once its daemons converged
                self.route_differences = build.read_back_routes()
            if self.placement is not None:  # before any shape: the tunnels' own delay
                from cdnlab.machines.tunnels import compensate

                self.tunnels = compensate(self)
            build.start_shaping()
            if self.topology.routing == "bgp":  # once packets cross the shaped links
                from cdnlab.net.bgp import BgpNetwork

                self.bgp = BgpNetwork(self)
                self.bgp.start()  # and the routes read back again, BGP's
                self.route_differences = build.read_back_routes()
            self.awake.confirm()  # `auto`: unless the host throttled the spinning CPUs
            self.awake.watch()  # and, while they spin, unless it starts to
        except BaseException:
            self.stop()
            raise

    def _mininet(self) -> Any:
        """Mininet's network object: its own on one machine; across machines Mininet
        Cluster Edition's, after the machines are checked and the run opened on each."""
        options = {"topo": None, "build": False, "controller": None, "autoSetMacs": False,
                   "waitConnected": False}
        if self.machine_set is None:
            from mininet.net import Mininet

            return Mininet(**options)
        from mininet.examples.cluster import MininetCluster, RemoteMixin

        from cdnlab.machines import session
        from cdnlab.machines.remote import LINK_CLASS, Machines

        assert self.ledger is not None
        self.machines = Machines(session.shells_for(self.machine_set, self.run_id,
                                                    self.ledger))
        session.precheck(self.machines, self.run_dir)
        session.open_machines(self.machines, self.run_id, self.ledger)
        servers = self.machine_set.machines
        return MininetCluster(servers=servers, precheck=False, link=LINK_CLASS,
                              user=next(iter(self.machines.shells.values())).user,
                              serverIP={s: RemoteMixin.findServerIP(s) for s in servers},
                              **options)

    def stop(self) -> None:
        """Remove everything this run created; safe to call more than once."""
        for service in reversed(self.services):
            with contextlib.suppress(Exception):
                service.stop()
        self.services.clear()
        self.changes.stop()
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

    def add_service(self, service: Any) -> None:
        """A node program (cdnlab.services) to stop, in reverse order, before teardown."""
        self.services.append(service)

    # -- use -------------------------------------------------------------------------------
    def node(self, name: str) -> Any:
        if name not in self.topology.nodes:
            raise KeyError(f"unknown node {name!r}")
        return self.net.get(name)

    def namespace_pid(self, name: str) -> int:
        """A PID on this machine whose network namespace reaches host `name` as the
        emulated network does: its own, or in a split run with `name` on another machine,
        the first host (by name) on this one."""
        node = self.node(name)
        if not getattr(node, "isRemote", False):
            return int(node.pid)
        assert self.placement is not None
        local = sorted(h for h in self.topology.hosts() if self.placement.machine_of[h] == HEAD)
        if not local:
            raise EnvironmentProblem(f"no host on this machine reaches {name}: pin one here "
                                     "(cluster.place)")
        return int(self.node(local[0]).pid)

    def ip(self, name: str) -> str:
        return str(self.plan.address(name))

    def link(self, a: str, b: str) -> ShapedLink:
        return self.links[self.topology.link(a, b).name]

    def interface(self, node: str, link_index: int) -> str:
        return self.plan.interface(node, link_index).name

    @property
    def routes_dir(self) -> Path:
        """Each L3 node's `ip -batch` file of addresses and routes, written at build."""
        return self.run_dir / "routes"

    @property
    def shaping(self) -> str:
        return self.backend.name
