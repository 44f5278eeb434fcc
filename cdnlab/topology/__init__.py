"""Topology specs: the YAML a user writes, validated into typed nodes and links, plus the
address plan and routes derived from it. Pure code: nothing here touches the network.
"""

from cdnlab.topology.shape import LinkShape
from cdnlab.topology.spec import Link, Node, Topology, load_topology

__all__ = ["Link", "LinkShape", "Node", "Topology", "load_topology"]
