"""The netem backend's commands against the real `tc` of this machine.

This kernel has no sch_netem, so the backend cannot run here (its runtime test belongs to the
real-kernel tier in a QEMU guest). What can be checked here is that every command it
issues parses: `tc` parses netem's arguments in userspace before the kernel sees them, so a
syntax error prints usage, while a kernel without netem answers "qdisc kind is unknown".
"""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest
from mininet.link import TCIntf

from cdnlab.net.shaping import htb
from cdnlab.net.shaping.netem import netem_args, netem_limit, tclink_params
from cdnlab.topology.shape import LinkShape

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
def test_mininet_tclink_commands_from_our_parameters_parse(shape: LinkShape) -> None:
    params = tclink_params(shape)
    # bwCmds only reads the class's rate ceiling from `self`
    ceiling = SimpleNamespace(bwParamMax=TCIntf.bwParamMax)
    bw_cmds, parent = TCIntf.bwCmds(ceiling, bw=params["bw"])  # type: ignore[arg-type]
    delay_cmds, _ = TCIntf.delayCmds(parent, delay=params["delay"],
                                     jitter=params.get("jitter"), loss=params.get("loss"),
                                     max_queue_size=params["max_queue_size"])
    commands = [c % ("tc", "lo") for c in bw_cmds + delay_cmds]
    assert any("netem" in c for c in commands) and any("htb" in c for c in commands)
    assert f"limit {netem_limit(shape)}" in commands[-1]
    done = tc_in_new_namespace(commands)
    assert parsed(done), f"{commands}: {done.stderr}"
    # the handles our in-place rate change names are the ones Mininet created
    assert f"classid {htb.CLASS}" in " ".join(commands) and "handle 10:" in commands[-1]


def test_netem_limit_covers_the_bandwidth_delay_product() -> None:
    # 100 Mbit/s for 50 ms is 417 packets of 1500 bytes in flight, plus the 50-packet queue
    assert netem_limit(LinkShape(rate=100.0, delay=50.0, queue=50)) == 50 + 417
