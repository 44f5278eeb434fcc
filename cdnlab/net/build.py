"""Building an emulation's network, step by step (engine, network layer): nodes, links
through the shaping backend, the controller's connection, interfaces, addresses and
routes (read back from each kernel, so expected paths are the network's own), then the
shapes. `Emulation.start` runs the steps in order; every thing a step creates is in the
run's ledger before or as it is created."""

from __future__ import annotations

import os
import time
from typing import Any

from cdnlab.errors import EnvironmentProblem
from cdnlab.machines.spec import HEAD
from cdnlab.net.shaping.base import BuildContext, local_pid, run_in
from cdnlab.topology.spec import HOST, ROUTER
from cdnlab.traces import load_trace


def gateway_routes(listing: str) -> list[tuple[str, str]]:
    """(subnet, gateway) of every route with a gateway in `ip -4 -o route show`'s output."""
    return [(fields[0], fields[fields.index("via") + 1])
            for fields in (line.split() for line in listing.splitlines()) if "via" in fields]


class NetworkBuilder:
    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.topology = emu.topology
        self.plan = emu.plan

    def machine(self, node: str) -> str | None:
        """The machine holding `node` in a split run, None for this one (the head)."""
        placement = self.emu.placement
        if placement is None or placement.machine_of[node] == HEAD:
            return None
        return str(placement.machine_of[node])

    def node_params(self, name: str, local: Any, remote: Any) -> dict[str, Any]:
        """`addHost`/`addSwitch` keyword arguments: the class, and in a split run the
        Cluster Edition class with the node's machine."""
        if self.emu.placement is None:
            return {"cls": local}
        return {"cls": remote, "server": self.emu.placement.machine_of[name],
                "machines": self.emu.machines}

    def refuse_name_clashes(self) -> None:
        """Never adopt (and later delete) an interface or bridge this run did not make
        (on this machine; another machine's names are checked as they are made)."""
        existing = set(os.listdir("/sys/class/net"))
        ours = {n for n in self.topology.nodes if self.topology.kind(n) not in (HOST, ROUTER)
                and self.machine(n) is None}
        ours |= {i.name for i in self.plan.interfaces.values() if i.node in ours}
        clash = sorted(existing & ours)
        if clash:
            raise EnvironmentProblem(f"interfaces {', '.join(clash)} already exist: another "
                                     "run may be active, or one was interrupted (cdnlab clean)")

    def add_nodes(self) -> None:
        from mininet.node import OVSSwitch

        from cdnlab.net.node_classes import EmulatedHost, IpBridge, Router

        remote: dict[str, Any] = {}
        if self.emu.placement is not None:
            from cdnlab.machines import remote as cluster

            remote = {"host": cluster.ClusterHost, "router": cluster.ClusterRouter,
                      "bridge": cluster.ClusterBridge, "ovs": cluster.ClusterOVSSwitch}
        ledger = self.emu.ledger
        assert ledger is not None
        for index, node in enumerate(self.topology.nodes.values(), start=1):
            machine = self.machine(node.name)
            if node.kind in (HOST, ROUTER):
                local = EmulatedHost if node.kind == HOST else Router
                added = self.emu.net.addHost(
                    node.name, ip=None, **self.node_params(node.name, local,
                                                           remote.get(node.kind)))
                where = f" on {machine}" if machine else ""
                ledger.add_process(local_pid(added), f"{node.kind} {node.name}{where}")
            elif self.emu.datapath == "bridge":
                ledger.add_linux_bridge(node.name, machine)
                self.emu.net.addSwitch(node.name, dpid=f"{index:016x}",
                                       **self.node_params(node.name, IpBridge,
                                                          remote.get("bridge")))
            else:
                ledger.add_ovs_bridge(node.name, machine)
                self.emu.net.addSwitch(node.name, dpid=f"{index:016x}",
                                       failMode="standalone", datapath=self.emu.datapath,
                                       protocols="OpenFlow13",
                                       **self.node_params(node.name, OVSSwitch,
                                                          remote.get("ovs")))

    def start_controller(self) -> None:
        """With a controller, the switches connect to it over OpenFlow 1.3 (fail mode
        standalone: they keep forwarding without it)."""
        if self.emu.controller_kind is None:
            return
        from cdnlab.net.controller import Controller
        from cdnlab.net.node_classes import ListeningController

        assert self.emu.ledger is not None
        self.emu.controller = Controller(self.emu)
        self.emu.controller.start()
        added = self.emu.net.addController("c0", controller=ListeningController,
                                           ip="127.0.0.1", port=self.emu.controller.port)
        self.emu.ledger.add_process(added.pid, "mininet shell of c0")

    def add_links(self) -> None:
        emu = self.emu
        assert emu.ledger is not None
        ctx = BuildContext(emu.net, emu.run_dir, emu.seed, emu.t0, emu.ledger)
        if emu.placement is not None:
            from cdnlab.machines import remote as cluster

            ctx.link_class = cluster.LINK_CLASS
            ctx.box_params = lambda node_a: self.node_params(node_a.name, None,
                                                             cluster.ClusterLinkBox)
        for link in self.topology.links:
            intf_a = self.plan.interface(link.a, link.index).name
            intf_b = self.plan.interface(link.b, link.index).name
            # switch ports live in the root namespace: record them before they exist
            for end, intf in ((link.a, intf_a), (link.b, intf_b)):
                if self.topology.kind(end) not in (HOST, ROUTER):
                    emu.ledger.add_interfaces([intf], self.machine(end))
            emu.links[link.name] = emu.backend.connect(
                ctx, link, emu.net.get(link.a), emu.net.get(link.b), intf_a, intf_b,
                boxed=link.name in emu.dynamic_links)

    def configure_interfaces(self) -> None:
        """Userspace OVS mangles partially checksummed packets: compute checksums in the
        stack instead (TX checksum offload off) on every interface of the run."""
        if self.emu.datapath != "user":
            return
        for node in self.emu.net.hosts + self.emu.net.switches:  # a switch's shell: root ns
            names = [i.name for i in node.intfList() if i.name != "lo"]
            if names:
                node.cmd("; ".join(f"ethtool -K {n} tx off >/dev/null 2>&1" for n in names))

    def install_addresses_and_routes(self) -> None:
        """Every layer-3 node's addresses and planned routes; under `routing: bgp` the
        routers get addresses only, and their daemons fill their tables. With `anycast:`,
        the anycast clusters' servers hold its address, and every other host routes its
        prefix to the first router on its segment."""
        batches = self.emu.routes_dir
        batches.mkdir(parents=True, exist_ok=True)
        learned = self.topology.routing == "bgp"
        anycast = self.topology.anycast
        serving = {s for c in (anycast.clusters if anycast else ())
                   for s in self.topology.clusters()[c]}
        for name, node in self.topology.nodes.items():
            if node.kind not in (HOST, ROUTER):
                continue
            lines = [f"addr add {i.address} dev {i.name}" for i in self.plan.of_node(name)
                     if i.address is not None]
            if not (learned and node.kind == ROUTER):
                lines += [f"route add {r.subnet} via {r.via}"
                          for r in self.emu.routing.routes[name].values()]
            if anycast is not None and name in serving:  # it answers on the address
                lines.append(f"addr add {anycast.address}/32 dev lo")
            elif anycast is not None and node.kind == HOST:  # it asks the router BGP fills
                gateway = self.emu.routing.gateway(name)
                if gateway is not None:
                    lines.append(f"route add {anycast.prefix} via {gateway}")
            batch = batches / f"{name}.ip"
            batch.write_text("\n".join(lines) + "\n")
            run_in(self.emu.net.get(name), f"ip -batch {batch}")

    def read_back_routes(self) -> list[str]:
        """Every layer-3 node's gateway routes as its kernel holds them, adopted as the
        routing the expected paths walk; the differences from the plan, in words."""
        installed: dict[str, list[tuple[str, str]]] = {}
        for name, node in self.topology.nodes.items():
            if node.kind not in (HOST, ROUTER):
                continue
            installed[name] = gateway_routes(run_in(self.emu.net.get(name),
                                                    "ip -4 -o route show"))
        learned = {n for n, node in self.topology.nodes.items() if node.kind == ROUTER} \
            if self.topology.routing == "bgp" else set()
        return self.emu.routing.adopt(installed, learned)

    def start_shaping(self) -> None:
        for link in self.emu.links.values():
            link.start()
        for link in self.emu.links.values():
            link.launch()
        deadline = time.monotonic() + 15.0
        for link in self.emu.links.values():
            link.wait_ready(deadline)
        for spec in self.topology.links:
            if spec.trace is not None:
                self.emu.changes.replay(spec.a, spec.b, load_trace(spec.trace.path),
                                        spec.trace.direction, spec.trace.loop)
