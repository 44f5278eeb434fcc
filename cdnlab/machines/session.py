"""The machines of one split run, from the head: checked, opened, and closed.

`precheck` asks every other machine, over ssh, for its view (`agent check`): it must run
cdnlab from the same Python and project path as the head, as root (directly or through
sudo), and see the head's run directory (a token the head wrote there) — node programs on
every machine read and write the run directory, so it must be one shared directory (NFS,
a virtual machine's shared folder, 9p) at the same path. Each failure is an
`EnvironmentProblem` naming the machine and the fix. `open` makes the run's cgroup on each
machine and records it in the head's ledger before any remote process exists.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from cdnlab.errors import EnvironmentProblem
from cdnlab.machines.remote import Machines
from cdnlab.machines.spec import MachineSet
from cdnlab.machines.ssh import MachineShell, local_user

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def control_dir(run_id: str) -> str:
    """Where the run's shared ssh connections keep their sockets (short: sockets' paths are
    limited to 108 bytes)."""
    return f"/tmp/cdnlab-ssh-{run_id[-6:]}"


def shells_for(spec: MachineSet, run_id: str, ledger: Any) -> dict[str, MachineShell]:
    """One shell per other machine; the connections' directory (in the ledger before it
    exists) belongs to whoever runs ssh here (the user who ran sudo)."""
    directory = Path(control_dir(run_id))
    ledger.add_directory(directory)
    directory.mkdir(mode=0o700, exist_ok=True)
    if local_user() != "root":
        shutil.chown(directory, local_user())
    user = spec.user or local_user()
    return {server: MachineShell(server, user, control_dir(run_id)) for server in spec.others}


def _agent(shell: MachineShell, argv: list[str], stdin: str | None = None,
           timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    try:
        return shell.run([sys.executable, "-m", "cdnlab.machines.agent", *argv], stdin,
                         timeout_s)
    except subprocess.TimeoutExpired as err:
        raise EnvironmentProblem(f"machine {shell.server} did not answer within "
                                 f"{timeout_s:g} s over ssh") from err


def precheck(machines: Machines, run_dir: Path) -> None:
    token = secrets.token_hex(8)
    marker = run_dir / ".machines-check"
    marker.write_text(token)
    try:
        for server, shell in machines.shells.items():
            done = _agent(shell, ["check", str(marker)])
            if done.returncode == 255:
                said = done.stderr.strip()[-200:] or "refused"
                raise EnvironmentProblem(
                    f"cannot ssh to {shell.user}@{server}: {said}"
                    f" (fix: the head's user {local_user()} needs a key that {shell.user}@{server}"
                    " accepts without a password, e.g. ssh-copy-id; set cluster.user for "
                    "another login)")
            if done.returncode != 0 or not done.stdout.strip().startswith("{"):
                raise EnvironmentProblem(
                    f"machine {server} cannot run {sys.executable} -m cdnlab.machines.agent: "
                    f"{(done.stderr or done.stdout).strip()[-200:]} (fix: set up cdnlab at "
                    f"{PROJECT_ROOT} there too, with `sudo make setup SETUP_CLUSTER=yes`, "
                    "and let the ssh user run sudo without a password)")
            view: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            if view["root"] != str(PROJECT_ROOT):
                raise EnvironmentProblem(f"machine {server} runs cdnlab from {view['root']}, "
                                         f"the head from {PROJECT_ROOT} (fix: the same path "
                                         "on every machine)")
            if not view["root_user"]:
                raise EnvironmentProblem(f"machine {server}: the agent did not run as root "
                                         "(fix: passwordless sudo for the ssh user)")
            if view["shared"] != token:
                raise EnvironmentProblem(
                    f"machine {server} does not see the run directory {run_dir} (fix: put "
                    "runs on a directory every machine mounts at the same path, e.g. "
                    "--out /srv/cdnlab/runs/NAME with /srv/cdnlab shared over NFS)")
    finally:
        marker.unlink(missing_ok=True)


def open_machines(machines: Machines, run_id: str, ledger: Any) -> None:
    """The run's cgroup on every other machine, recorded in the head's ledger first (as
    the machine; its cgroup once made)."""
    for server, shell in machines.shells.items():
        ledger.add_machine(server, shell.user, control_dir(run_id))
        done = _agent(shell, ["open", run_id])
        if done.returncode != 0:
            raise EnvironmentProblem(f"machine {server}: cannot open the run there: "
                                     f"{done.stderr.strip()[-200:]}")
        cgroup = done.stdout.strip()
        machines.cgroups[server] = cgroup
        ledger.set_machine_cgroup(server, cgroup or None)
