"""`cdnlab doctor`: what this machine offers the emulator, what will be used, and the fixes.

Reports kernel features (netem, htb, NFQUEUE, physdev, bridge netfilter, the openvswitch
module), Open vSwitch's daemons, Linux bridges, Mininet and the tools on PATH; says which
shaping backend and switch datapath `auto` picks; with `--fix` starts Open vSwitch if it is
installed but not running. Exits 1 with the exact fix when something essential is missing.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

from cdnlab.capabilities import APT_FOR_TOOL, ESSENTIAL_TOOLS, Capabilities, detect, start_ovs
from cdnlab.measure.lateness import summary
from cdnlab.net.cpu_awake import STEAL_PROBE_S, CpuAwake


def problems(caps: Capabilities) -> list[str]:
    found = []
    if not caps.root:
        found.append("not root: kernel features cannot be probed or used; run with sudo")
    if not caps.mininet:
        found.append("Mininet does not import: run `sudo make setup` (Debian package mininet)")
    if caps.root and caps.shaping_backend is None:
        found.append("no shaping backend: the kernel lacks sch_netem, and htb + NFQUEUE + "
                     "physdev + br_netfilter are not all there (modprobe sch_netem, or "
                     "modprobe br_netfilter xt_physdev nfnetlink_queue)")
    if caps.root and caps.switch_datapath is None:
        found.append("no switch datapath: start Open vSwitch (`cdnlab doctor --fix`) or allow "
                     "Linux bridges")
    for tool in ESSENTIAL_TOOLS:
        if not caps.tools.get(tool):
            found.append(f"{tool} is missing: apt-get install {APT_FOR_TOOL.get(tool, tool)}")
    return found


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def report(caps: Capabilities) -> str:
    rows = [
        ("running as root", _yes(caps.root)),
        ("sch_netem (delay/jitter/loss in the kernel)", _yes(caps.netem)),
        ("sch_htb (rate)", _yes(caps.htb)),
        ("iptables NFQUEUE target", _yes(caps.nfqueue)),
        ("iptables physdev match", _yes(caps.physdev)),
        ("bridge netfilter", _yes(caps.bridge_netfilter)),
        ("openvswitch kernel module", _yes(caps.ovs_kernel_module)),
        ("Open vSwitch installed", _yes(caps.ovs_installed)),
        ("Open vSwitch daemons running", _yes(caps.ovs_daemons)),
        ("Linux bridge", _yes(caps.linux_bridge)),
        ("Mininet importable", _yes(caps.mininet)),
    ]
    rows += [(f"tool {tool}", _yes(found)) for tool, found in caps.tools.items()]
    width = max(len(r[0]) for r in rows)
    lines = [f"  {name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines.append(f"  shaping backend (auto): {caps.shaping_backend or 'none'}")
    lines.append(f"  switch datapath (auto): {caps.switch_datapath or 'none'}")
    if caps.ovs_daemons and not caps.ovs_kernel_module:
        lines.append("  (OVS userspace datapath available with --datapath user)")
    return "\n".join(lines)


def leftovers() -> list[str]:
    """What interrupted runs left, by their ledgers: runs of an earlier boot (their OVS
    bridges and directories outlive a reboot) and of this one."""
    from cdnlab.net.ledger import stale_ledgers

    stale, unreadable = stale_ledgers()
    found = [f"unreadable ledger {path}" for path in unreadable]
    for ledger in stale:
        record = ledger.record
        held = [f"{len(items)} {what}" for items, what in (
            (record.ovs_bridges, "OVS bridge(s)"), (record.linux_bridges, "Linux bridge(s)"),
            (record.interfaces, "interface(s)"), (record.directories, "directory(ies)"))
            if items]
        if record.this_boot:
            held.insert(0, f"{len(record.processes)} process(es) and its cgroup")
        when = "this boot" if record.this_boot else "an earlier boot"
        found.append(f"run {record.run_id} (interrupted, {when}): {', '.join(held) or 'nothing'}"
                     " recorded; `sudo cdnlab clean` removes what still exists")
    return found


def run(fix: bool, as_json: bool) -> int:
    notes = []
    if fix:
        ok, how = start_ovs()
        notes.append(f"Open vSwitch: {how}")
        if not ok:
            notes.append("  continuing: Linux bridges serve as switches without it")
    caps = detect()
    found = problems(caps)
    timers = CpuAwake("auto")  # what `--cpu-awake auto` will decide, measured the same way
    timers.start()
    if timers.active:  # as a run confirms once its network is up
        time.sleep(STEAL_PROBE_S)
        timers.confirm()
    timers.stop()
    left = leftovers()
    if as_json:
        print(json.dumps({"capabilities": asdict(caps), "shaping_backend": caps.shaping_backend,
                          "switch_datapath": caps.switch_datapath,
                          "cpu_awake": timers.describe(), "problems": found,
                          "leftovers": left},
                         indent=2))
    else:
        print("cdnlab doctor")
        print(report(caps))
        print(f"  timers (--cpu-awake auto): {summary(timers.describe())}")
        for note in notes:
            print(f"  {note}")
        if left:
            print("\nleftovers of interrupted runs:")
            for line in left:
                print(f"  - {line}")
        if found:
            print("\nproblems:")
            for problem in found:
                print(f"  - {problem}")
        else:
            print("\nready: every essential is present")
    return 1 if found else 0
