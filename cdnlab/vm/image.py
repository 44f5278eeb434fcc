"""The guest image of the real-kernel test tier: provisioned by the repository's own
`make setup`, as a user's machine or the Vagrant VM is, and cached by content.

What the image holds is fixed by four inputs, and their hash is the cache key:
`guest-packages.txt` (what debootstrap adds: the kernel, and `make`), the `Makefile` (whose
`setup` installs everything else), the Python dependencies in `pyproject.toml` (runtime and
`test` extra) and this file (the recipe). A cached image is reused while all are unchanged;
the project tree itself is copied in afresh at every boot.

The recipe: `debootstrap --variant=minbase` of the host's own suite from the host's own
mirror (`cdnlab.vm.mirror`), with the distribution kernel; the project tree copied to
`/opt/cdnlab/src` and `make setup SETUP_BROWSER=no SETUP_CLUSTER=yes` (no browser; sshd and
sudo for the two-guest cluster tier) run there in a chroot (Debian packages
through apt from the same mirror, the venv at `/opt/cdnlab/src/.venv` from PyPI; the host's
pip configuration and any local package indexes it names are made visible read-only, and
services are kept from starting); an initrd rewritten to hold only what mounts the root
disk; a small PID 1 (`/sbin/cdnlab-init`) that mounts the host's 9p share and hands over to
the `guest-init.sh` the host put there; then `mkfs.ext4 -d`, which makes a file system
image from the directory without loop devices. The kernel and initrd are kept beside it for
QEMU's direct boot. A build goes to a temporary directory renamed into place at the end, so
an interrupted build never leaves a half image in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdnlab.errors import CdnlabError, EnvironmentProblem
from cdnlab.vm.mirror import debian_mirror, host_suite

HERE = Path(__file__).resolve().parent
PACKAGES_FILE = HERE / "guest-packages.txt"
DEFAULT_CACHE = Path("/var/cache/cdnlab/vm")
SETUP_TREE = "/opt/cdnlab/src"  # the project as `make setup` provisioned it in the image
GUEST_VENV = f"{SETUP_TREE}/.venv"
SETUP = ["make", "-C", SETUP_TREE, "setup", "SETUP_BROWSER=no", "SETUP_CLUSTER=yes"]
# apt starts no service in the chroot (invoke-rc.d asks this; 101: action forbidden)
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
IMAGE_SIZE = "6G"  # sparse: the file takes only what the root file system holds
HOST_TOOLS = {"debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs", "chroot": "coreutils"}

# The modules the initrd holds: what mounts the root disk (virtio block, ext4). Debian's
# default (MODULES=most) made a 35 MB initrd that took the emulated CPU 7 s to unpack.
INITRD_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4")

# PID 1 in the guest. It must be in the image (the share is not mounted yet); everything
# after the mount comes from the project tree (boot.py puts guest-init.sh at the share's
# top), so changing it needs no rebuild.
INIT_STUB = """#!/bin/sh
# cdnlab test guest, PID 1: mount the host's share and run the project tree's guest script.
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
modprobe 9pnet_virtio && modprobe 9p
mkdir -p /mnt/host
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 host /mnt/host; then
    /bin/sh /mnt/host/guest-init.sh
else
    echo "cdnlab-init: the host share did not mount"
fi
sync
echo "cdnlab-init: powering off"
echo o > /proc/sysrq-trigger
sleep 60  # PID 1 must outlive the power-off, or the kernel panics first
"""


@dataclass(frozen=True)
class GuestImage:
    directory: Path

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs.img"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def manifest(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.directory / "manifest.json").read_text())
        return loaded

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.rootfs, self.kernel, self.initrd,
                                         self.directory / "manifest.json"))


def guest_packages(path: Path = PACKAGES_FILE) -> list[str]:
    names = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [name for name in names if name]


def python_requirements(pyproject: Path) -> list[str]:
    """The project's runtime dependencies and its `test` extra (pytest runs in the guest)."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return list(project.get("dependencies", [])) + list(extras.get("test", []))


def image_key(project_root: Path, suite: str) -> str:
    """The packages, the Makefile, the Python requirements (not the rest of pyproject.toml,
    so a pytest setting does not rebuild the image), this recipe and the suite."""
    requirements = json.dumps(python_requirements(project_root / "pyproject.toml"))
    makefile = project_root / "Makefile"
    digest = hashlib.sha256()
    for part in (PACKAGES_FILE.read_bytes(), requirements.encode(),
                 makefile.read_bytes() if makefile.exists() else b"",
                 Path(__file__).read_bytes(), suite.encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def missing_host_tools() -> list[str]:
    return sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})


Log = Callable[[str], None]


def _run(argv: list[str], log_file: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log_file.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False, env=env)
    if done.returncode != 0:
        tail = log_file.read_text().splitlines()[-15:]
        raise CdnlabError(f"guest image: {what} failed (exit {done.returncode}); "
                          f"last lines of {log_file}:\n  " + "\n  ".join(tail))


def _chroot_env() -> dict[str, str]:
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}


PIP_CONFIG_FILES = (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"),
                    Path("/root/.config/pip/pip.conf"), Path("/root/.pip/pip.conf"))


def _pip_local_paths() -> list[Path]:
    """The local files and directories the host's pip configuration names (certificates,
    constraints, find-links, file:// indexes): the chroot must see them where pip looks."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                          text=True, check=False)
    values = [line.partition("=")[2].strip().strip("'\"") for line in done.stdout.splitlines()]
    values += [v for k, v in os.environ.items() if k.startswith("PIP_")]
    found = []
    for value in values:
        for token in value.split():
            path = Path(token.removeprefix("file://"))
            if token.startswith("file://") and path.name == "simple":
                path = path.parent  # a local index: its pages link to files beside them
            if path.is_absolute() and path.exists() and path not in found:
                found.append(path)
    return found


def _mount(argv: list[str], log_file: Path, what: str) -> None:
    _run(["mount", *argv], log_file, what)


def _prepare_chroot(root: Path, log_file: Path) -> None:
    """What apt and pip need inside: /proc and /dev, the host's name resolution and pip
    configuration, the local paths that configuration names (read-only), and no service
    started by a package."""
    _mount(["-t", "proc", "proc", str(root / "proc")], log_file, "mounting /proc")
    _mount(["--bind", "/dev", str(root / "dev")], log_file, "binding /dev")
    (root / "etc" / "resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text(POLICY_RC_D)
    policy.chmod(0o755)
    for config in PIP_CONFIG_FILES:
        if config.is_file():
            target = root / config.relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(config, target)
    for path in _pip_local_paths():
        target = root / path.relative_to("/")
        if path.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            continue
        target.mkdir(parents=True, exist_ok=True)
        _mount(["--bind", str(path), str(target)], log_file, f"binding {path}")
        _mount(["-o", "remount,bind,ro", str(target)], log_file, f"making {path} read-only")


def _provision(root: Path, project_root: Path, log_file: Path) -> None:
    """The project tree at SETUP_TREE and `make setup` run there, as a user runs it."""
    from cdnlab.vm.boot import copy_project

    copy_project(project_root, root / SETUP_TREE.lstrip("/"))
    try:
        _prepare_chroot(root, log_file)
        env = _chroot_env() | {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
        _run(["chroot", str(root), *SETUP], log_file, "make setup in the image", env=env)
        # matplotlib builds its font cache on first import: here, once, not in every boot's
        # emulated CPU (a run's plots would otherwise pay for it)
        _run(["chroot", str(root), f"{GUEST_VENV}/bin/python", "-c",
              "import matplotlib.pyplot"], log_file, "warming matplotlib's font cache",
             env=_chroot_env())
    finally:
        _unmount_under(root)
        (root / "usr" / "sbin" / "policy-rc.d").unlink(missing_ok=True)


def _finish_root(root: Path) -> None:
    init = root / "sbin" / "cdnlab-init"
    init.write_text(INIT_STUB)
    init.chmod(0o755)
    (root / "etc" / "hostname").write_text("cdnlab-guest\n")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost cdnlab-guest\n")
    for cached in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        cached.unlink()


def _small_initrd(root: Path, log_file: Path) -> None:
    config = root / "etc" / "initramfs-tools"
    (config / "conf.d" / "cdnlab-guest").write_text("MODULES=list\n")
    with (config / "modules").open("a") as modules:
        modules.write("\n".join(INITRD_MODULES) + "\n")
    _run(["chroot", str(root), "update-initramfs", "-u", "-k", "all"], log_file,
         "writing the initrd", env=_chroot_env())


def _take_boot_files(root: Path, image: GuestImage) -> None:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise CdnlabError("guest image: no kernel in /boot after debootstrap")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise CdnlabError(f"guest image: the kernel {version} has no initrd")
    shutil.copyfile(kernels[-1], image.kernel)
    shutil.copyfile(initrd, image.initrd)


def _unmount_under(path: Path) -> None:
    """Unmount what an interrupted debootstrap left mounted in the tree (proc, sys), deepest
    first, before the tree is deleted."""
    prefix = str(path.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _remove_tree(path: Path) -> None:
    _unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)


def build_image(project_root: Path, cache: Path = DEFAULT_CACHE, rebuild: bool = False,
                log: Log = print) -> GuestImage:
    """The cached image for this package list and these dependencies, built if missing."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("building the guest image needs root (debootstrap, chroot): "
                                 "run it with sudo")
    if missing := missing_host_tools():
        raise EnvironmentProblem(f"building the guest image needs {', '.join(missing)}: "
                                 f"apt-get install {' '.join(missing)} "
                                 "(or `sudo make vm-packages`)")
    suite = host_suite()
    key = image_key(project_root, suite)
    image = GuestImage(cache / key)
    if image.complete() and not rebuild:
        log(f"guest image: cached {image.directory}")
        os.utime(image.directory)  # used now: pruning keeps the most recently used
        return image
    mirror = debian_mirror(suite)
    packages = guest_packages()
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f"{key}.building-{os.getpid()}"
    _remove_tree(work)
    work.mkdir()
    building = GuestImage(work)
    log_file = work / "build.log"
    started = time.monotonic()
    try:
        root = work / "root"
        log(f"guest image: debootstrap {suite} from {mirror} ({len(packages)} packages and "
            f"their dependencies); log in {log_file}")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
              suite, str(root), mirror], log_file, "debootstrap")
        log(f"guest image: {' '.join(SETUP)} in the image (apt from {mirror}, pip as "
            "configured here)")
        _provision(root, project_root, log_file)
        _finish_root(root)
        _small_initrd(root, log_file)
        _take_boot_files(root, building)
        log(f"guest image: file system ({IMAGE_SIZE}, sparse)")
        _run(["mkfs.ext4", "-q", "-F", "-L", "cdnlab-guest", "-d", str(root),
              str(building.rootfs), IMAGE_SIZE], log_file, "mkfs.ext4")
        _remove_tree(root)
        manifest = {"key": key, "suite": suite, "mirror": mirror, "packages": packages,
                    "provisioned_by": " ".join(SETUP),
                    "python": python_requirements(project_root / "pyproject.toml"),
                    "built_s": round(time.monotonic() - started, 1),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if image.directory.exists():
            shutil.rmtree(image.directory)
        work.rename(image.directory)
    except BaseException:
        if log_file.is_file():  # the half-built tree goes; what happened stays
            shutil.copyfile(log_file, cache / f"{key}.failed.log")
            log(f"guest image: build failed; its log is {cache / f'{key}.failed.log'}")
        _remove_tree(work)
        raise
    log(f"guest image: built {image.directory} in {time.monotonic() - started:.0f} s")
    for removed in prune(cache):
        log(f"guest image: removed the older image {removed}")
    return image


def prune(cache: Path, keep: int = 2) -> list[Path]:
    """Remove all but the `keep` most recently used images, and builds whose builder is
    gone (a `<key>.building-<pid>` directory of a dead process)."""
    removed = []
    images = sorted((p for p in cache.iterdir() if p.is_dir() and GuestImage(p).complete()),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in images[keep:]:
        _remove_tree(old)
        removed.append(old)
    for partial in cache.glob("*.building-*"):
        pid = partial.name.rsplit("-", 1)[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_tree(partial)
            removed.append(partial)
    return removed
