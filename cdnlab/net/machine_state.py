"""A snapshot of everything a run could leave on the machine — network interfaces, Open
vSwitch bridges, run ledgers, named network namespaces, iptables rules and chains, run
cgroups, mounts, the kernel's autogroups switch — so a test can compare before and after
and prove a run left nothing behind."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from cdnlab.net import autogroups
from cdnlab.net.cgroup import PARENT, cgroup2_mount
from cdnlab.net.ledger import LEDGER_DIR


@dataclass(frozen=True)
class MachineState:
    interfaces: frozenset[str]
    ovs_bridges: frozenset[str]
    ledgers: frozenset[str]
    named_netns: frozenset[str]
    iptables: tuple[str, ...]
    cgroups: frozenset[str]
    mounts: frozenset[str]
    autogroups: bool | None


def _iptables_rules() -> tuple[str, ...]:
    """Every iptables rule and chain of the root namespace, without counters."""
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True,
                           check=False).stdout
    return tuple(line.split(" [")[0] for line in saved.splitlines()
                 if line and not line.startswith("#"))


def _run_cgroups() -> frozenset[str]:
    mount = cgroup2_mount()
    parent = mount / PARENT if mount else None
    return frozenset(p.name for p in parent.iterdir() if p.is_dir()) \
        if parent and parent.is_dir() else frozenset()


def _mount_points() -> frozenset[str]:
    with open("/proc/self/mountinfo") as table:
        return frozenset(line.split()[4] for line in table)


def machine_state() -> MachineState:
    ovs = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                         text=True, check=False).stdout.split()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=False).stdout.split()
    ledgers = [p.name for p in LEDGER_DIR.glob("*.json")] if LEDGER_DIR.is_dir() else []
    return MachineState(frozenset(os.listdir("/sys/class/net")), frozenset(ovs),
                        frozenset(ledgers), frozenset(netns), _iptables_rules(),
                        _run_cgroups(), _mount_points(), autogroups.enabled())
