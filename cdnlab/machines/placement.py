"""Which machine holds each node of a split run.

The cost of a split is the links whose two ends are on different machines: each becomes a
tunnel between the machines (Mininet Cluster Edition's `RemoteGRELink`), shaped at its two
ends like any link, but carrying the real network's latency and the tunnel's overhead on
top of the emulated ones. So the placement keeps both ends of as many links as it can on
one machine, under a balance constraint (a machine's share of the nodes within
`ceil(n/k) ± slack`, slack = max(1, n // 4k)), and between equally few crossings prefers to
cross the links of longest emulated delay, where the real network's share of the RTT is
smallest. Pinned nodes (`cluster.place`) never move.

The method, from every node as a start: a breadth-first order cut into k balanced runs,
then greedy moves of single nodes to the machine most of their links go to, while that
lowers the cost and keeps the balance (a local refinement in the manner of Kernighan and
Lin, 1970, with moves instead of swaps); the cheapest result wins, then the most even. It
is deterministic: the same topology and machines give the same placement.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from cdnlab.topology.spec import Link, Topology

# A crossing costs 1; a link of longer delay costs a little less, so that between
# placements of equally many crossings the one crossing long links wins.
_DELAY_DISCOUNT = 0.01


@dataclass(frozen=True)
class Placement:
    machine_of: dict[str, str]
    machines: tuple[str, ...]
    crossing: tuple[str, ...]  # names of the links between machines

    def nodes_on(self, machine: str) -> list[str]:
        return [n for n, m in self.machine_of.items() if m == machine]

    def describe(self) -> dict[str, object]:
        return {"machines": {m: self.nodes_on(m) for m in self.machines},
                "crossing_links": list(self.crossing)}

    def lines(self) -> list[str]:
        out = [f"  {m}: {' '.join(self.nodes_on(m)) or '(nothing)'}" for m in self.machines]
        out.append(f"  links between machines: {', '.join(self.crossing) or 'none'}")
        return out


def _link_cost(link: Link) -> float:
    delay = max(link.a_to_b.delay, link.b_to_a.delay)
    return 1.0 - _DELAY_DISCOUNT * (1.0 - 1.0 / (1.0 + delay))


def _neighbours(topology: Topology) -> dict[str, list[tuple[str, float]]]:
    found: dict[str, list[tuple[str, float]]] = {n: [] for n in topology.nodes}
    for link in topology.links:
        cost = _link_cost(link)
        found[link.a].append((link.b, cost))
        found[link.b].append((link.a, cost))
    return found


def _bfs(start: str, neighbours: dict[str, list[tuple[str, float]]]) -> list[str]:
    order, seen, queue = [start], {start}, deque([start])
    while queue:
        for other, _ in sorted(neighbours[queue.popleft()]):
            if other not in seen:
                seen.add(other)
                order.append(other)
                queue.append(other)
    return order




def _refine(machine_of: dict[str, str], neighbours: dict[str, list[tuple[str, float]]],
            pinned: dict[str, str], low: int, high: int) -> None:
    """Move single nodes to the machine most of their links lead to, while that lowers
    the cost and keeps every machine's load within [low, high]."""
    load: dict[str, int] = {}
    for machine in machine_of.values():
        load[machine] = load.get(machine, 0) + 1
    moved = True
    while moved:
        moved = False
        for node in sorted(machine_of):
            if node in pinned:
                continue
            here = machine_of[node]
            pull: dict[str, float] = {}
            for other, cost in neighbours[node]:
                pull[machine_of[other]] = pull.get(machine_of[other], 0.0) + cost
            best = max(sorted(pull), key=lambda m: pull[m], default=here)
            if (best != here and pull[best] > pull.get(here, 0.0) + 1e-9
                    and load.get(best, 0) + 1 <= high and load[here] - 1 >= low):
                machine_of[node] = best
                load[best] = load.get(best, 0) + 1
                load[here] -= 1
                moved = True


def place(topology: Topology, machines: list[str],
          pinned: dict[str, str] | None = None) -> Placement:
    """The best placement found from every starting node: fewest (cheapest) crossings,
    then the most even loads, then the first start by name."""
    pinned = dict(pinned or {})
    k = len(machines)
    if k > len(topology.nodes):
        raise ValueError(f"{k} machines for {len(topology.nodes)} nodes: name fewer machines")
    neighbours = _neighbours(topology)
    n = len(neighbours)
    slack = max(1, n // (4 * k))
    low, high = max(1, n // k - slack), math.ceil(n / k) + slack
    best: tuple[float, int] | None = None
    chosen: dict[str, str] = {}
    for start in sorted(neighbours):
        order = _bfs(start, neighbours)
        machine_of = {node: machines[min(k - 1, i * k // n)] for i, node in enumerate(order)}
        machine_of.update(pinned)
        _refine(machine_of, neighbours, pinned, low, high)
        loads = [sum(1 for x in machine_of.values() if x == m) for m in machines]
        if min(loads) == 0:
            continue
        cost = sum(_link_cost(link) for link in topology.links
                   if machine_of[link.a] != machine_of[link.b])
        score = (round(cost, 9), max(loads) - min(loads))
        if best is None or score < best:
            best, chosen = score, machine_of
    if best is None:
        raise ValueError("no placement uses every machine: the pinned nodes leave one "
                         "empty; pin fewer nodes or name fewer machines")
    crossing = tuple(link.name for link in topology.links
                     if chosen[link.a] != chosen[link.b])
    ordered = {name: chosen[name] for name in topology.nodes}
    return Placement(ordered, tuple(machines), crossing)
