"""A split run's share on another machine is undone there, and one that cannot start says
why: the agent's `undo` ends the run's cgroup and removes its bridges; a ledger whose
machine does not answer stays for `cdnlab clean` to retry; a machine ssh cannot reach is
refused before anything is made, and leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cdnlab.errors import EnvironmentProblem
from cdnlab.machines.spec import parse_machines
from cdnlab.net.cgroup import RunCgroup
from cdnlab.net.emulation import Emulation
from cdnlab.net.ledger import Ledger, process_start_time
from cdnlab.topology import load_topology
from tests.net.conftest import machine_state

UNREACHABLE = "127.0.0.2"  # loopback, where no ssh server listens


def test_a_ledger_whose_machine_does_not_answer_stays_for_clean(tmp_path: Path) -> None:
    ledger = Ledger(f"t-{uuid.uuid4().hex[:6]}", tmp_path)
    ledger.add_machine(UNREACHABLE, "root", str(tmp_path / "ssh"))
    (tmp_path / "ssh").mkdir()
    removed = ledger.close()
    assert any(line.startswith(f"machine {UNREACHABLE}: NOT undone") for line in removed)
    assert ledger.path.exists(), "the ledger went although its machine kept its share"
    ledger.record.machines.clear()
    ledger.save()
    ledger.close()
    assert not ledger.path.exists()


@pytest.mark.root
def test_the_agent_undoes_a_machines_share() -> None:
    before = machine_state()
    run_id = f"undo-{uuid.uuid4().hex[:6]}"
    cgroup = RunCgroup.create(run_id)
    assert cgroup is not None
    bridge = f"cdnu{run_id[-6:]}"
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (cgroup.path / "cgroup.procs").write_text(f"{sleeper.pid}\n")
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
        record = {"run_id": run_id, "cgroup": str(cgroup.path), "linux_bridges": [bridge]}
        done = subprocess.run([sys.executable, "-m", "cdnlab.machines.agent", "undo"],
                              input=json.dumps(record), capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
        assert f"process {sleeper.pid} (forked inside the run)" in done.stdout
        assert f"cgroup {cgroup.path}" in done.stdout
        assert f"interface {bridge}" in done.stdout
        assert sleeper.wait(5) == -9
        assert not cgroup.path.exists() and not Path(f"/sys/class/net/{bridge}").exists()
    finally:
        if process_start_time(sleeper.pid) is not None:
            sleeper.kill()
        sleeper.wait()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        cgroup.remove()
    assert machine_state() == before


@pytest.mark.root
def test_a_split_emulation_without_a_shared_run_directory_is_refused() -> None:
    before = machine_state()
    machines = parse_machines(UNREACHABLE)
    with pytest.raises(EnvironmentProblem, match=r"give one \(--out\)"):
        Emulation(load_topology("minimal"), machines=machines)
    with pytest.raises(EnvironmentProblem, match="controller runs on one machine only"):
        Emulation(load_topology("minimal"), machines=machines, controller="os-ken",
                  run_dir=Path("/srv/x"))
    assert machine_state() == before


@pytest.mark.root
def test_a_machine_ssh_cannot_reach_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    before = machine_state()
    connections = set(Path("/tmp").glob("cdnlab-ssh-*"))
    done = subprocess.run([sys.executable, "-m", "cdnlab.cli", "run", "quick_pull",
                           "--cluster", UNREACHABLE, "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, check=False, timeout=120)
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"cannot ssh to root@{UNREACHABLE}" in said and "fix:" in said, said[-600:]
    assert machine_state() == before
    assert set(Path("/tmp").glob("cdnlab-ssh-*")) == connections, \
        "the ssh connections' directory stayed"
