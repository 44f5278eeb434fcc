"""`cdnlab vm cluster` (`make clustertest`): one scenario split across two QEMU guests.

The host side of the cluster tier. Two guests of the real-kernel tier's image boot at once
(TCG, one virtual CPU each), each with its own share (the project archive, `guest-init.sh`,
`cluster.env` naming its address and role, and an ed25519 key made for this run, which both
trust) and one share in common, mounted at `/srv/cdnlab` in both: the run directory every
machine of a split run must share. Their network is one virtual Ethernet link, QEMU's
UDP socket backend on the host's loopback (each guest's frames go to the other's port;
nothing leaves the host), with 10.0.9.1 (the head) and 10.0.9.2 (the worker).

The head runs `python -m cdnlab.vm.cluster_guest head`, which prints the tier's line
(`cluster: machines=2 viewers_ok=…/… rtt_err_max=…%`); the worker serves ssh until the
head writes that it is done. The verdict is the head's status and the worker's. On failure
both consoles and outputs are kept under `results/clustertest-<time>/`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from cdnlab.errors import EnvironmentProblem
from cdnlab.vm.boot import pack_project, qemu_command, read_status, run_qemu
from cdnlab.vm.image import GuestImage, build_image
from cdnlab.vm.tier import PROJECT_ROOT

NETWORK = "10.0.9"
GUESTS = (("head", 1), ("worker", 2))
MEMORY_MB = 3072
OTHER_GUEST_GRACE_S = 90.0
CPUS = 1  # one per guest: two guests of two vCPUs on two cores stalled (soft lockups)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _devices(index: int, ports: dict[int, int], shared: Path) -> list[str]:
    peer = 3 - index
    return ["-netdev", f"socket,id=link,udp=127.0.0.1:{ports[peer]},"
                       f"localaddr=127.0.0.1:{ports[index]}",
            "-device", f"virtio-net-pci,netdev=link,mac=52:54:00:00:09:{index:02x}",
            "-virtfs", f"local,path={shared},mount_tag=shared,security_model=none,id=shared"]


def _prepare_share(share: Path, archive: Path, keys: Path, role: str, index: int,
                   command: list[str]) -> None:
    import json

    (share / "out").mkdir(parents=True)
    (share / "ssh").mkdir()
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copyfile(keys / name, share / "ssh" / name)
    (share / "project.tar").hardlink_to(archive)
    shutil.copyfile(PROJECT_ROOT / "cdnlab" / "vm" / "guest-init.sh", share / "guest-init.sh")
    (share / "cluster.env").write_text(f"CLUSTER_ROLE={role}\nCLUSTER_NAME=cdnlab-{role}\n"
                                       f"CLUSTER_ADDRESS={NETWORK}.{index}/24\n")
    (share / "out" / "command.json").write_text(json.dumps(command))


def run(cache: Path, rebuild: bool = False, timeout_s: float = 1800.0,
        echo: bool = True) -> int:
    if shutil.which("qemu-system-x86_64") is None or shutil.which("ssh-keygen") is None:
        raise EnvironmentProblem("the cluster tier needs QEMU and ssh-keygen: "
                                 "`sudo make vm-packages` and openssh-client")
    started = time.monotonic()
    image: GuestImage = build_image(PROJECT_ROOT, cache, rebuild)
    work = Path(tempfile.mkdtemp(prefix="cdnlab-cluster-"))
    passed = False
    try:
        keys, shared = work / "keys", work / "shared"
        keys.mkdir()
        shared.mkdir()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cdnlab-cluster",
                        "-f", str(keys / "id_ed25519")], check=True)
        archive = work / "project.tar"
        copied = pack_project(PROJECT_ROOT, archive)
        ports = {index: _free_udp_port() for _, index in GUESTS}
        commands = {"head": ["python", "-m", "cdnlab.vm.cluster_guest", "head",
                             "--peer", f"{NETWORK}.2"],
                    "worker": ["python", "-m", "cdnlab.vm.cluster_guest", "worker",
                               "--timeout", str(int(timeout_s))]}
        threads, timed_out, stop = [], {}, threading.Event()
        print(f"clustertest: {copied} project files; booting 2 guests (TCG, {CPUS} CPUs, "
              f"{MEMORY_MB} MiB each) on a virtual link {NETWORK}.0/24", flush=True)
        for role, index in GUESTS:
            share = work / role
            _prepare_share(share, archive, keys, role, index, commands[role])
            argv = qemu_command(image, share, CPUS, MEMORY_MB, _devices(index, ports, shared))

            def boot(argv: list[str] = argv, share: Path = share, role: str = role) -> None:
                timed_out[role] = run_qemu(argv, share / "console.log", timeout_s, echo, role,
                                           stop)
            threads.append(threading.Thread(target=boot, name=role))
        for thread in threads:
            thread.start()
        while all(thread.is_alive() for thread in threads):
            time.sleep(1)
        # one guest is gone: the other has a minute to finish (the worker stops once the
        # head says it is done; a head whose worker died fails on its own)
        for thread in threads:
            thread.join(OTHER_GUEST_GRACE_S)
        stop.set()
        for thread in threads:
            thread.join()
        statuses = {role: read_status(work / role) for role, _ in GUESTS}
        head_log = work / "head" / "out" / "command.txt"
        lines = [line for line in (head_log.read_text().splitlines() if head_log.is_file()
                                   else []) if line.startswith("cluster:")]
        for line in lines:
            print(f"clustertest: {line}" if "FAIL" in line else line)
        passed = all(status == 0 for status in statuses.values()) and not any(
            timed_out.values())
        for role, status in statuses.items():
            state = "timed out" if timed_out.get(role) else f"status {status}"
            print(f"clustertest: {role} {state}")
        print(f"clustertest: {'passed' if passed else 'failed'} in "
              f"{time.monotonic() - started:.0f} s")
        return 0 if passed else 1
    finally:
        if not passed:
            kept = PROJECT_ROOT / "results" / time.strftime("clustertest-%Y%m%d-%H%M%S")
            for role, _ in GUESTS:
                if (work / role).is_dir():
                    (kept / role).mkdir(parents=True, exist_ok=True)
                    if (work / role / "console.log").is_file():
                        shutil.copyfile(work / role / "console.log", kept / role / "console.log")
                    shutil.copytree(work / role / "out", kept / role / "out", dirs_exist_ok=True)
            if (work / "shared" / "runs").is_dir():
                shutil.copytree(work / "shared" / "runs", kept / "runs", dirs_exist_ok=True,
                                symlinks=True)
            print(f"clustertest: consoles, outputs and the run kept in {kept}")
        shutil.rmtree(work, ignore_errors=True)
