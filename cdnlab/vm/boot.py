"""Boot the test guest under QEMU with a copy of the project tree, and collect what it says.

The host side of the real-kernel tier. QEMU runs without acceleration (TCG, one thread per
virtual CPU) and without any network device (`-nic none`): the guest reaches nothing. Its
only channel is a 9p share, a temporary directory holding `guest-init.sh` (which the image's
PID 1 runs), `project.tar` (a copy of the tree: tracked and untracked-but-not-ignored files,
so uncommitted changes are what gets tested; one archive, since unpacking it in the guest
takes a fraction of the time copying ~400 files over 9p does) and `out/`, where the guest
writes its status, pytest's JUnit XML and the benchmark table. The root disk is the cached
image opened with `snapshot=on`, so a run never changes it.

The tree is compiled to bytecode here, where the CPU is real. The serial console is echoed
as it arrives and written to `console.log`. On failure the console log and `out/` are kept
under `results/vmtest-<time>/`; on success the share goes. QEMU is a child that dies with
this process (PDEATHSIG), and is killed on timeout.
"""

from __future__ import annotations

import compileall
import json
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cdnlab.capabilities import EMULATED_CPU_FLAG
from cdnlab.errors import EnvironmentProblem
from cdnlab.vm.image import GuestImage
from nodes.common.lifecycle import spawn_child

SHARE_TAG = "host"  # the mount tag the image's init mounts
# The emulated CPU model: x86-64-v2 (SSE4.2, POPCNT, as numpy needs) without AVX. With `max`
# glibc and numpy pick AVX2 code, which TCG emulates slower: measured in the guest, Python
# work ran 15-50 % faster on Nehalem (json 6.2 → 4.8 s, SHA-256 2.3 → 1.1 s, boot 23 → 22 s).
GUEST_CPU = "Nehalem"
EXCLUDED = {".git", ".venv", ".setup", "results", "__pycache__", ".pytest_cache",
            ".ruff_cache"}


@dataclass
class GuestRun:
    status: int | None  # the guest's own exit status; None if it never wrote one
    seconds: float
    timed_out: bool
    kept: Path | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == 0 and not self.timed_out


def project_files(project_root: Path) -> list[Path]:
    """The tree to copy: git's tracked and untracked-but-not-ignored files, else a walk."""
    if (project_root / ".git").exists() and shutil.which("git"):
        done = subprocess.run(["git", "-C", str(project_root), "ls-files", "-z", "--cached",
                               "--others", "--exclude-standard"],
                              capture_output=True, check=False)
        if done.returncode == 0:
            names = [n for n in done.stdout.decode().split("\0") if n]
            return [Path(n) for n in names if (project_root / n).is_file()]
    files = []
    for path in sorted(project_root.rglob("*")):
        relative = path.relative_to(project_root)
        if path.is_file() and not EXCLUDED & set(relative.parts):
            files.append(relative)
    return files


def copy_project(project_root: Path, destination: Path) -> int:
    """Copy the tree (times kept) and compile its Python here: the guest's Python is the
    same Debian build, so it takes these .pyc files instead of compiling on its emulated
    CPU in every process it starts."""
    files = project_files(project_root)
    for relative in files:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project_root / relative, target)
    compileall.compile_dir(str(destination), quiet=1, workers=0)
    return len(files)


def pack_project(project_root: Path, archive: Path) -> int:
    """The copied and compiled tree as one tar file whose top directory is `project/`
    (times kept, so the bytecode stays valid where it is unpacked)."""
    staging = Path(tempfile.mkdtemp(prefix="cdnlab-vm-tree-"))
    try:
        copied = copy_project(project_root, staging / "project")
        with tarfile.open(archive, "w") as tar:
            tar.add(staging / "project", arcname="project")
        return copied
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def qemu_command(image: GuestImage, share: Path, cpus: int, memory_mb: int,
                 devices: list[str] | None = None) -> list[str]:
    """QEMU's argv; `devices` replaces `-nic none` (the cluster tier's network and second
    share)."""
    return ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", GUEST_CPU,
            "-smp", str(cpus), "-m", str(memory_mb),
            "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
            *(devices if devices is not None else ["-nic", "none"]),
            "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 panic=-1 init=/sbin/cdnlab-init "
                       "net.ifnames=0 quiet loglevel=4 mitigations=off fsck.mode=skip "
                       + EMULATED_CPU_FLAG,
            "-drive", f"file={image.rootfs},if=virtio,format=raw,snapshot=on",
            "-virtfs", f"local,path={share},mount_tag={SHARE_TAG},security_model=none,"
                       "id=host"]


def _pump(stream: TextIO, log: TextIO, echo: bool, started: float, name: str) -> None:
    """Console lines to the log and, stamped with seconds since boot, to this terminal."""
    for line in stream:
        log.write(line)
        log.flush()
        if echo:
            print(f"  {name} {time.monotonic() - started:6.1f}| {line.rstrip()}", flush=True)


def run_qemu(argv: list[str], console_path: Path, timeout_s: float, echo: bool,
             name: str = "guest", stop: threading.Event | None = None) -> bool:
    """QEMU until the guest powers off; True if it had to be killed at `timeout_s` (or
    when `stop` is set: the cluster tier's other guest is gone)."""
    started = time.monotonic()
    with console_path.open("w") as console:
        qemu = spawn_child(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace")
        assert qemu.stdout is not None
        pump = threading.Thread(target=_pump, args=(qemu.stdout, console, echo, started,
                                                    name), daemon=True)
        pump.start()
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
                try:
                    qemu.wait(timeout=1.0)
                    return False
                except subprocess.TimeoutExpired:
                    continue
            return True
        finally:  # also on Ctrl-C: QEMU never outlives the call
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
            pump.join(timeout=5)


def boot(image: GuestImage, project_root: Path, keep_root: Path, timeout_s: float,
         cpus: int = 2, memory_mb: int = 4096, echo: bool = True,
         command: list[str] | None = None) -> GuestRun:
    """One boot. `command` replaces the tier's steps with one command, run in the guest's
    copy of the tree after the kernel checks (`cdnlab vm run -- …`)."""
    if shutil.which("qemu-system-x86_64") is None:
        raise EnvironmentProblem("the test guest needs QEMU: apt-get install "
                                 "qemu-system-x86 (or `sudo make vm-packages`)")
    share = Path(tempfile.mkdtemp(prefix="cdnlab-vm-"))
    run: GuestRun | None = None
    started = time.monotonic()
    try:
        (share / "out").mkdir()
        copied = pack_project(project_root, share / "project.tar")
        shutil.copyfile(project_root / "cdnlab" / "vm" / "guest-init.sh",
                        share / "guest-init.sh")  # what the image's PID 1 runs
        if command:
            (share / "out" / "command.json").write_text(json.dumps(command))
        print(f"vmtest: {copied} project files copied in; booting the guest "
              f"(TCG, {cpus} CPUs, {memory_mb} MiB, no network device)", flush=True)
        timed_out = run_qemu(qemu_command(image, share, cpus, memory_mb),
                              share / "console.log", timeout_s, echo)
        run = GuestRun(read_status(share), time.monotonic() - started, timed_out)
        result_file = share / "out" / "result.json"
        if result_file.is_file():
            run.result = json.loads(result_file.read_text())
        return run
    finally:  # the share goes in every case; what a failed (or interrupted) run said stays
        if run is None or not run.passed:
            kept = keep_root / time.strftime("vmtest-%Y%m%d-%H%M%S")
            kept.mkdir(parents=True, exist_ok=True)
            if (share / "console.log").is_file():
                shutil.copyfile(share / "console.log", kept / "console.log")
            if (share / "out").is_dir():
                shutil.copytree(share / "out", kept / "out", dirs_exist_ok=True)
            if run is not None:
                run.kept = kept
            else:
                print(f"vmtest: console log and guest output kept in {kept}")
        shutil.rmtree(share, ignore_errors=True)


def read_status(share: Path) -> int | None:
    status = share / "out" / "status"
    try:
        return int(status.read_text().strip())
    except (OSError, ValueError):
        return None
