"""Switch datapaths and forced backends: OVS userspace works (TCP survives its checksum
handling), and what this kernel cannot do is refused with the fix."""

from __future__ import annotations

import subprocess

import pytest

from cdnlab.capabilities import detect
from cdnlab.errors import EnvironmentProblem
from cdnlab.measure import fidelity
from cdnlab.measure.reachability import unreachable
from cdnlab.net.emulation import Emulation
from cdnlab.topology import load_topology

pytestmark = pytest.mark.root


@pytest.mark.skipif(not detect().ovs_daemons, reason="Open vSwitch is not running")
def test_ovs_userspace_datapath_forwards_tcp(nothing_left_behind: None) -> None:
    with Emulation(load_topology("minimal"), datapath="user") as emu:
        assert emu.datapath == "user"
        assert unreachable(emu) == []
        goodput = fidelity.measure_goodput(emu, "edge1_1", "c1", seconds=2)
        assert abs(goodput.measured_mbps - 20.0) <= 2.0


@pytest.mark.vm
@pytest.mark.skipif(not detect().ovs_kernel_module,
                    reason="no openvswitch kernel module here; the QEMU tier runs it (make vmtest)")
def test_ovs_kernel_datapath_forwards_at_rate(nothing_left_behind: None) -> None:
    with Emulation(load_topology("minimal"), datapath="kernel") as emu:
        assert emu.datapath == "kernel"
        # the switches' ports are in the kernel's datapath, not in ovs-vswitchd's userspace one
        datapaths = subprocess.run(["ovs-dpctl", "show"], capture_output=True, text=True,
                                   check=True).stdout
        for switch in emu.net.switches:
            kind = switch.cmd(f"ovs-vsctl get bridge {switch.name} datapath_type").strip()
            assert kind in ('""', "system"), kind
            for intf in switch.intfNames():
                if intf != "lo":
                    assert f": {intf}" in datapaths, (intf, datapaths)
        assert unreachable(emu) == []
        goodput = fidelity.remeasured_on_miss(
            lambda: fidelity.measure_goodput(emu, "edge1_1", "c1", seconds=3), lambda s: s.ok)
        assert abs(goodput.measured_mbps - 20.0) <= 2.0, goodput


def test_linux_bridge_datapath(nothing_left_behind: None) -> None:
    with Emulation(load_topology("minimal"), datapath="bridge") as emu:
        assert unreachable(emu) == []


@pytest.mark.skipif(detect().netem, reason="this kernel has netem")
def test_forcing_netem_without_it_names_the_fix() -> None:
    with pytest.raises(EnvironmentProblem, match=r"no sch_netem.*use --shaping nfqueue"):
        Emulation(load_topology("minimal"), shaping="netem")


@pytest.mark.skipif(detect().ovs_kernel_module, reason="this kernel has the OVS module")
def test_forcing_the_ovs_kernel_datapath_without_the_module_names_the_fix() -> None:
    with pytest.raises(EnvironmentProblem, match="openvswitch kernel module"):
        Emulation(load_topology("minimal"), datapath="kernel")
