"""What every shaping backend provides: wiring one topology link, and reshaping it live.

A backend's `connect` creates the Mininet link(s) for one topology link and returns a
`ShapedLink`; `start` applies the shapes once the network is up, `set_shape` changes a
direction in place (rate by htb class change, delay/jitter/loss by the backend's own means),
`stop` undoes what `start` did. Direction `a_to_b` is shaped where it leaves node a.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import Link

DIRECTIONS = ("a_to_b", "b_to_a")


def run_in(node: Any, command: str) -> str:
    """Run a shell command in a Mininet node's namespace (the root namespace for switches)
    as its own process, so threads (trace replay) never share the node's shell; raise on
    failure with what the command printed."""
    argv = ["sh", "-c", command]
    if getattr(node, "inNamespace", True):
        argv = ["mnexec", "-a", str(node.pid), *argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
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


class ShapedLink(ABC):
    def __init__(self, spec: Link, node_a: Any, node_b: Any, intf_a: str, intf_b: str) -> None:
        self.spec = spec
        self.nodes = {"a_to_b": node_a, "b_to_a": node_b}
        self.intfs = {"a_to_b": intf_a, "b_to_a": intf_b}
        self.shapes = {"a_to_b": spec.a_to_b, "b_to_a": spec.b_to_a}
        self.segmentation_off = False

    @property
    def name(self) -> str:
        return self.spec.name

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
