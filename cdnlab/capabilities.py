"""What this kernel and machine offer the emulator, found by trying rather than guessing.

Each kernel feature is probed in a throwaway network namespace (`unshare -n`), which
vanishes with the probe, so probing creates nothing that outlives it. `cdnlab doctor`
prints these facts; `cdnlab.net` uses them to choose the shaping backend and the switch
datapath.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
TOOLS = ("ip", "tc", "iptables", "ethtool", "ping", "iperf3", "tcpdump", "ovs-vsctl",
         "ffmpeg", "nginx", "dig", "nsupdate", "dnsperf", "unbound", "unbound-control",
         "vtysh")
ESSENTIAL_TOOLS = ("ip", "tc", "iptables", "ethtool", "ping", "iperf3")
APT_FOR_TOOL = {"ip": "iproute2", "tc": "iproute2", "ping": "iputils-ping",
                "ovs-vsctl": "openvswitch-switch", "dig": "bind9-dnsutils",
                "nsupdate": "bind9-dnsutils", "unbound-control": "unbound", "vtysh": "frr"}
# On the kernel command line of the real-kernel tier's QEMU guest (cdnlab/vm/boot.py),
# whose CPU is emulated (TCG): the one machine fact that no probe can read reliably
EMULATED_CPU_FLAG = "cdnlab.guest=tcg"


def _probe(script: str) -> bool:
    """Run `script` as root in a new, empty network namespace; True if it exits 0."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True,
                              timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass(frozen=True)
class Capabilities:
    root: bool
    netem: bool
    htb: bool
    nfqueue: bool
    physdev: bool
    bridge_netfilter: bool
    ovs_kernel_module: bool
    ovs_daemons: bool
    ovs_installed: bool
    linux_bridge: bool
    mininet: bool
    tools: dict[str, bool] = field(default_factory=dict)

    @property
    def nfqueue_ready(self) -> bool:
        return self.htb and self.nfqueue and self.physdev and self.bridge_netfilter

    @property
    def shaping_backend(self) -> str | None:
        """The backend `auto` picks: netem where the kernel has it, else nfqueue."""
        if self.netem and self.htb:
            return "netem"
        if self.nfqueue_ready:
            return "nfqueue"
        return None

    @property
    def switch_datapath(self) -> str | None:
        """`kernel` (OVS with the openvswitch module) where it exists, else `bridge` (Linux
        bridge). OVS's userspace datapath (`user`) is only chosen on request, or when an
        OpenFlow controller needs OVS: measured here it adds about 0.25 ms per switch
        crossing under load, which breaks RTT fidelity on short paths; a Linux bridge adds
        about 0.02 ms."""
        if self.ovs_daemons and self.ovs_kernel_module:
            return "kernel"
        if self.linux_bridge:
            return "bridge"
        if self.ovs_daemons:
            return "user"
        return None


def ovs_daemons_running() -> bool:
    if shutil.which("ovs-vsctl") is None:
        return False
    done = subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True,
                          check=False)
    return done.returncode == 0


def ovs_kernel_module() -> bool:
    if os.path.isdir("/sys/module/openvswitch"):
        return True
    if os.geteuid() == 0 and shutil.which("modprobe"):
        subprocess.run(["modprobe", "-q", "openvswitch"], capture_output=True, check=False)
    return os.path.isdir("/sys/module/openvswitch")


def emulated_cpu(cmdline: Path = Path("/proc/cmdline")) -> bool:
    """True in the QEMU tier's guest, where every packet is forwarded by an emulated CPU."""
    try:
        return EMULATED_CPU_FLAG in cmdline.read_text().split()
    except OSError:
        return False


def mininet_importable() -> bool:
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def detect() -> Capabilities:
    tools = {tool: shutil.which(tool) is not None for tool in TOOLS}
    return Capabilities(
        root=os.geteuid() == 0,
        netem=_probe("tc qdisc add dev lo root netem delay 1ms"),
        htb=_probe("tc qdisc add dev lo root handle 5: htb default 1"),
        nfqueue=_probe("iptables -w -t mangle -A FORWARD -j NFQUEUE --queue-num 0"),
        physdev=_probe("iptables -w -t mangle -A FORWARD -m physdev --physdev-in x -j ACCEPT"),
        bridge_netfilter=os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables")
        or _probe("test -e /proc/sys/net/bridge/bridge-nf-call-iptables"),
        ovs_kernel_module=ovs_kernel_module(),
        ovs_daemons=ovs_daemons_running(),
        ovs_installed=os.path.exists(OVS_CTL),
        linux_bridge=_probe("ip link add cdnlabprobe type bridge"),
        mininet=mininet_importable(),
        tools=tools,
    )


def start_ovs() -> tuple[bool, str]:
    """Start Open vSwitch's daemons (userspace datapath works without the kernel module)."""
    if ovs_daemons_running():
        return True, "already running"
    if not os.path.exists(OVS_CTL):
        return False, "Open vSwitch is not installed (apt-get install openvswitch-switch)"
    done = subprocess.run([OVS_CTL, "start", "--system-id=random"], capture_output=True,
                          text=True, check=False)
    detect.cache_clear()
    if ovs_daemons_running():
        return True, "started with ovs-ctl"
    return False, f"ovs-ctl start failed: {done.stderr.strip() or done.stdout.strip()}"
