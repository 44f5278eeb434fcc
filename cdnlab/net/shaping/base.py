"""What every shaping backend provides: wiring one topology link, and reshaping it live.

A backend's `connect` creates the Mininet link(s) for one topology link and returns a
`ShapedLink`; `start` applies the shapes once the network is up, `set_shape` changes a
direction in place (rate by htb class change, delay/jitter/loss by the backend's own means),
`stop` undoes what `start` did. Direction `a_to_b` is shaped where it leaves node a.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import Link

DIRECTIONS = ("a_to_b", "b_to_a")


def node_argv(node: Any, argv: list[str]) -> list[str]:
    """The local argv that runs `argv` in a Mininet node's namespace (the root namespace
    for switches), on the node's machine: through ssh for a node of another machine of a
    split run (`cdnlab.machines.remote`)."""
    if getattr(node, "inNamespace", True):
        argv = ["mnexec", "-a", str(node.pid), *argv]
    if getattr(node, "isRemote", False):
        return node.remote_argv(argv)  # type: ignore[no-any-return]
    return argv


def local_pid(node: Any) -> int:
    """The PID on this machine that holds a node: its shell, or for a node on another
    machine the ssh session its shell runs in (what this machine's ledger records)."""
    return int(node.shell.pid if getattr(node, "isRemote", False) else node.pid)


def machine_of(node: Any) -> str | None:
    """The machine a node runs on in a split run; None for this one."""
    return getattr(node, "server", None) if getattr(node, "isRemote", False) else None


def run_in(node: Any, command: str) -> str:
    """Run a shell command in a Mininet node's namespace (the root namespace for switches)
    as its own process, so threads (trace replay) never share the node's shell; raise on
    failure with what the command printed."""
    done = subprocess.run(node_argv(node, ["sh", "-c", command]), capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{node.name}: `{command}` failed: "
                           f"{(done.stderr or done.stdout).strip()}")
    return done.stdout


@dataclass
class BuildContext:
    """What a backend needs from the emulation while wiring links."""

    net: Any  # mininet.net.Mininet
    run_dir: Path
    seed: int
    t0: float
    ledger: Any  # cdnlab.net.ledger.Ledger
    # Mininet's link class: its plain Link on one machine, Mininet Cluster Edition's
    # RemoteGRELink across machines (a tunnel where the two ends' machines differ)
    link_class: Any = None
    # how to add the namespace in the middle of a boxed link next to node a
    # (`addHost` keyword arguments: its class, and its machine in a split run)
    box_params: Callable[[Any], dict[str, Any]] | None = None

    def link(self, node_a: Any, node_b: Any, intf_a: str, intf_b: str) -> Any:
        from mininet.link import Link as MininetLink

        return self.net.addLink(node_a, node_b, intfName1=intf_a, intfName2=intf_b,
                                cls=self.link_class or MininetLink)


class ShapedLink(ABC):
    def __init__(self, spec: Link, node_a: Any, node_b: Any, intf_a: str, intf_b: str) -> None:
        self.spec = spec
        self.nodes = {"a_to_b": node_a, "b_to_a": node_b}
        self.intfs = {"a_to_b": intf_a, "b_to_a": intf_b}
        self.shapes = {"a_to_b": spec.a_to_b, "b_to_a": spec.b_to_a}
        self.segmentation_off = False
        # delay the path itself adds one way (a tunnel between machines), taken off the
        # configured delay when installed: `applied` (cdnlab.machines.tunnels)
        self.compensation_ms = 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    def applied(self, shape: LinkShape) -> LinkShape:
        """The shape as installed: its delay less the path's own (never below zero)."""
        if not self.compensation_ms:
            return shape
        return shape.with_changes(delay=max(0.0, shape.delay - self.compensation_ms))

    def segment_for_loss(self) -> None:
        """A drop must cost one packet, not a 64 KB GSO super-packet: once any direction has
        loss, both ends send MTU-sized packets (every backend calls this at start and after
        each change). They stay so if the loss is removed later, which costs CPU, not
        fidelity."""
        if self.segmentation_off or not any(s.loss for s in self.shapes.values()):
            return
        self.segmentation_off = True
        for direction in self.nodes:
            node, intf = self.egress(direction)
            run_in(node, f"ethtool -K {intf} gso off tso off gro off >/dev/null 2>&1 || true")

    def egress(self, direction: str) -> tuple[Any, str]:
        """The node and interface whose egress carries `direction`."""
        return self.nodes[direction], self.intfs[direction]

    def set_rate(self, direction: str, rate_mbps: float | None) -> None:
        self.set_shape(direction, self.shapes[direction].with_changes(rate=rate_mbps))

    @abstractmethod
    def start(self) -> None:
        """Apply the shapes once the network is up."""

    def launch(self) -> None:  # noqa: B027 - optional hook: only nfqueue has helpers
        """Start helper processes, without waiting (all links launch, then all wait)."""

    def wait_ready(self, deadline: float) -> None:  # noqa: B027 - optional hook
        """Wait until the helpers serve traffic (monotonic `deadline`); raise if they fail."""

    @abstractmethod
    def set_shape(self, direction: str, shape: LinkShape) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def extra_processes(self) -> list[int]:
        return []


class Backend(ABC):
    name: str

    @abstractmethod
    def connect(self, ctx: BuildContext, spec: Link, node_a: Any, node_b: Any,
                intf_a: str, intf_b: str, boxed: bool) -> ShapedLink:
        """Create the Mininet link(s) for `spec`; `boxed` asks for live delay changes later."""
