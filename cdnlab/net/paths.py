"""What a path through the emulation should measure, as the links are shaped *now*: the
routed path's expected RTT, bottleneck rate and loss (engine, network layer). Fidelity
checks and the results judge measurements against these."""

from __future__ import annotations

from cdnlab.net.shaping.base import ShapedLink
from cdnlab.topology.routing import Hop, Routing
from cdnlab.topology.shape import LinkShape


class Paths:
    def __init__(self, routing: Routing, links: dict[str, ShapedLink]) -> None:
        self.routing = routing
        self.links = links  # the emulation's, filled as it builds

    def current_shape(self, hop: Hop) -> LinkShape:
        shaped = self.links[hop.link.name]
        return shaped.shapes["a_to_b" if hop.src == hop.link.a else "b_to_a"]

    def expected_rtt_ms(self, src: str, dst: str) -> float:
        """The one-way delays along the routed path there and back, as shaped now."""
        return self.routing.expected_rtt_ms(src, dst, self.current_shape)

    def anycast_rtt_ms(self, src: str, speakers: set[str]) -> tuple[str, float]:
        """The anycast server `src` reaches, and the RTT of going there by the anycast
        routes and back by the server's own, as shaped now."""
        server, there = self.routing.anycast_path(src, speakers)
        back = self.routing.path(server, src)
        return server, sum(self.current_shape(h).delay for h in there + back)

    def bottleneck_mbps(self, src: str, dst: str) -> float | None:
        return self.routing.bottleneck_mbps(src, dst, self.current_shape)

    def path_loss_pct(self, src: str, dst: str) -> float:
        return self.routing.path_loss_pct(src, dst, self.current_shape)
