"""Mininet node classes of the emulated network: hosts, routers, link namespaces, bridges,
and the remote controller.

Mininet's own classes carry most of the weight (`Host` runs commands in a namespace,
`OVSSwitch` drives Open vSwitch); these add what cdnlab needs: routers forward IPv4, every
namespace drops IPv6 (the emulation is IPv4, so nothing bypasses the IPv4 shaping rules),
a `LinkBox` is the small namespace in the middle of a shaped wire where the nfqueue backend
delays packets, `IpBridge` is a Linux bridge switch driven with iproute2, and
`ListeningController` is Mininet's remote controller without its flaky port probe.
"""

from __future__ import annotations

import threading
from typing import Any

from mininet.node import Host, RemoteController, Switch

from nodes.common.lifecycle import die_with_parent

_QUIET_NAMESPACE = ("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
                    "net.ipv6.conf.default.disable_ipv6=1 net.ipv4.conf.all.rp_filter=0 "
                    "net.ipv4.conf.default.rp_filter=0")


class EmulatedHost(Host):
    """An end host (client, server, origin, DNS): IPv4 only.

    Every process Mininet starts for it (its shell, and each `popen` in its namespace) gets
    SIGKILL from the kernel when the engine dies (PR_SET_PDEATHSIG), so even an engine
    killed alone leaves little behind; the run's cgroup holds what these fork. The signal
    follows the *thread* that forked, so only processes started from the main thread get
    it: one started by the timeline's thread would otherwise die when that thread ends.
    """

    def _popen(self, cmd: list[str], **params: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            params.setdefault("preexec_fn", die_with_parent)
        return super()._popen(cmd, **params)

    def config(self, **params: Any) -> dict[str, Any]:
        result = super().config(**params)
        self.cmd(_QUIET_NAMESPACE)
        return result


class Router(EmulatedHost):
    """A host that forwards IPv4 between its interfaces."""

    def config(self, **params: Any) -> dict[str, Any]:
        result = super().config(**params)
        self.cmd("sysctl -qw net.ipv4.ip_forward=1")
        return result


class LinkBox(EmulatedHost):
    """The namespace in the middle of one shaped link: a bridge joining its two ports,
    whose FORWARD hook sends each direction to its own NFQUEUE."""

    BRIDGE = "br0"

    def join_ports(self, port_a: str, port_b: str) -> None:
        out = self.cmd(
            f"ip link add {self.BRIDGE} type bridge forward_delay 0 && "
            f"ip link set {port_a} master {self.BRIDGE} && "
            f"ip link set {port_b} master {self.BRIDGE} && "
            f"ip link set {self.BRIDGE} up && "
            "sysctl -qw net.bridge.bridge-nf-call-iptables=1 && echo joined")
        if "joined" not in out:
            raise RuntimeError(f"{self.name}: cannot bridge {port_a} and {port_b}: {out.strip()}")


class IpBridge(Switch):
    """A Linux bridge switch in the root namespace (used when Open vSwitch is not running)."""

    def start(self, _controllers: list[Any]) -> None:
        self.cmd(f"ip link add name {self.name} type bridge forward_delay 0")
        for intf in self.intfList():
            if intf.name != "lo":
                self.cmd(f"ip link set {intf.name} master {self.name}")
        self.cmd(f"ip link set {self.name} up")

    def stop(self, deleteIntfs: bool = True) -> None:
        self.cmd(f"ip link del {self.name}")
        super().stop(deleteIntfs)

    def connected(self) -> bool:
        return True


class ListeningController(RemoteController):
    """The os-ken controller as Mininet sees it, without Mininet's probe of its port:
    `cdnlab.net.controller.Controller.start` has already waited until it listens, and
    Mininet's probe (`telnet` through the controller node's shell) decodes whatever the
    port sends as UTF-8, so an OpenFlow HELLO whose random transaction id is not valid
    UTF-8 failed the whole bring-up with a UnicodeDecodeError."""

    def checkListening(self) -> None:
        return
