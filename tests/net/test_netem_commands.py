"""The netem backend's commands against the real `tc` of this machine.

This kernel has no sch_netem, so the backend cannot run here (its runtime test belongs to the
real-kernel tier in a QEMU guest). What can be checked here is that every command it
issues parses: `tc` parses netem's arguments in userspace before the kernel sees them, so a
syntax error prints usage, while a kernel without netem answers "qdisc kind is unknown".
"""

from __future__ import annotations

import subprocess

import pytest

from cdnlab.net.shaping import htb
from cdnlab.net.shaping.netem import netem_args, netem_limit
from cdnlab.topology.shape import MAX_RATE_MBPS, LinkShape

pytestmark = pytest.mark.root

SHAPES = [LinkShape(delay=5.0), LinkShape(rate=10.0, delay=20.0, jitter=2.0, loss=1.5),
          LinkShape(rate=None, delay=0.0), LinkShape(rate=100.0, delay=50.0, queue=50)]


def tc_in_new_namespace(commands: list[str]) -> subprocess.CompletedProcess[str]:
    script = " && ".join(commands)
    return subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True,
                          text=True, check=False)


def parsed(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode == 0 or "qdisc kind is unknown" in done.stderr


@pytest.mark.parametrize("shape", SHAPES)
def test_live_change_arguments_parse(shape: LinkShape) -> None:
    done = tc_in_new_namespace([f"tc qdisc add dev lo root handle 10: netem {netem_args(shape)}"])
    assert parsed(done), done.stderr


@pytest.mark.parametrize("shape", SHAPES)
def test_the_install_commands_parse_with_netem_or_a_fifo_as_leaf(shape: LinkShape) -> None:
    rate = shape.rate or MAX_RATE_MBPS
    commands = htb.install_commands("lo", rate, f"netem {netem_args(shape)}")
    assert f"limit {netem_limit(shape)}" in commands[-1]
    # the handles the in-place changes name (rate: the class; delay/loss: netem's qdisc)
    assert f"classid {htb.CLASS}" in commands[1]
    assert f"parent {htb.CLASS} handle {htb.LEAF} netem" in commands[-1]
    done = tc_in_new_namespace(commands)
    assert parsed(done), f"{commands}: {done.stderr}"
    # the nfqueue backend's leaf: htb and pfifo exist here, so the whole set applies
    done = tc_in_new_namespace(htb.install_commands("lo", rate, htb.fifo(shape.queue)))
    assert done.returncode == 0, done.stderr


def test_netem_limit_covers_the_bandwidth_delay_product() -> None:
    # 100 Mbit/s for 50 ms is 417 packets of 1500 bytes in flight, plus the 50-packet queue
    assert netem_limit(LinkShape(rate=100.0, delay=50.0, queue=50)) == 50 + 417
