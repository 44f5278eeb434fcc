"""The real-kernel tier's host side, without booting: the mirror read from apt sources, the
image's cache key and contents, the tree copied in, and the QEMU command line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from cdnlab.errors import CdnlabError
from cdnlab.vm import image as vm_image
from cdnlab.vm.boot import SHARE_TAG, pack_project, project_files, qemu_command
from cdnlab.vm.image import (
    INIT_STUB,
    GuestImage,
    guest_packages,
    image_key,
    python_requirements,
)
from cdnlab.vm.mirror import debian_mirror, host_suite, parse_deb822, parse_one_line

ROOT = Path(__file__).resolve().parents[2]

DEB822 = """\
Types: deb
# a comment between fields
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
Enabled: no
URIs: http://off.example/debian
Suites: bookworm
Components: main
"""


def test_deb822_stanzas_give_binary_enabled_sources_only() -> None:
    sources = parse_deb822(DEB822)
    assert [s.uri for s in sources] == ["http://mirror.example/debian"]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].components == ("main", "contrib")


def test_one_line_entries_with_options_and_comments() -> None:
    text = ("# deb http://commented.example/debian bookworm main\n"
            "deb-src http://src.example/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main # x\n"
            "deb http://two.example/debian bookworm-security main\n")
    sources = parse_one_line(text)
    assert [(s.uri, s.suites, s.components) for s in sources] == [
        ("http://one.example/debian", ("bookworm",), ("main",)),
        ("http://two.example/debian", ("bookworm-security",), ("main",))]


def test_the_mirror_is_the_first_source_of_the_suite_with_main(tmp_path: Path) -> None:
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (tmp_path / "sources.list").write_text("deb http://sec.example/d bookworm-security main\n")
    (parts / "debian.sources").write_text(DEB822)
    (parts / "other.list.disabled").write_text("deb http://ignored.example/d bookworm main\n")
    assert debian_mirror("bookworm", tmp_path) == "http://mirror.example/debian"
    with pytest.raises(CdnlabError, match=r"no apt source .* serves 'trixie main'"):
        debian_mirror("trixie", tmp_path)


def test_this_machines_sources_name_a_mirror_for_its_own_suite() -> None:
    mirror = debian_mirror(host_suite())
    assert mirror.split(":", 1)[0] in ("http", "https", "file")


def test_host_suite_needs_a_codename(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian"\nVERSION_CODENAME=bookworm\n')
    assert host_suite(release) == "bookworm"
    release.write_text('NAME="Something"\n')
    with pytest.raises(CdnlabError, match="no VERSION_CODENAME"):
        host_suite(release)


def test_the_guest_gets_the_kernel_and_make_setup_brings_the_rest() -> None:
    """debootstrap adds the kernel and make; the emulator, the servers and Python come from
    the Makefile's `setup`, the one users run (issue: the users' own entry points)."""
    packages = guest_packages()
    assert {"linux-image-amd64", "make"} <= set(packages)
    assert all(" " not in p and not p.startswith("#") for p in packages)
    assert vm_image.SETUP[:3] == ["make", "-C", vm_image.SETUP_TREE] and "setup" in \
        vm_image.SETUP
    makefile = (ROOT / "Makefile").read_text()
    apt = makefile[makefile.index("APT_PACKAGES :="):].split("\n\n")[0]
    assert all(name in apt for name in ("mininet", "openvswitch-switch", "python3-venv"))
    requirements = python_requirements(ROOT / "pyproject.toml")
    assert any(r.startswith("os-ken") for r in requirements)
    assert any(r.startswith("pytest") for r in requirements)  # the test extra, for the guest


def test_the_cache_key_follows_packages_and_requirements_not_other_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    pyproject = project / "pyproject.toml"
    base = ('[project]\nname = "x"\ndependencies = ["PyYAML>=6"]\n'
            '[project.optional-dependencies]\ntest = ["pytest>=7.4"]\n')
    pyproject.write_text(base)
    packages = tmp_path / "packages.txt"
    packages.write_text("mininet\n")
    monkeypatch.setattr(vm_image, "PACKAGES_FILE", packages)
    key = image_key(project, "bookworm")
    assert image_key(project, "bookworm") == key and len(key) == 16
    pyproject.write_text(base + '[tool.pytest.ini_options]\nmarkers = ["vm: x"]\n')
    assert image_key(project, "bookworm") == key, "a pytest setting must not rebuild"
    assert image_key(project, "trixie") != key
    pyproject.write_text(base.replace("PyYAML>=6", "PyYAML>=6.0.1"))
    assert image_key(project, "bookworm") != key
    pyproject.write_text(base)
    packages.write_text("mininet\nnginx\n")
    assert image_key(project, "bookworm") != key
    packages.write_text("mininet\n")
    (project / "Makefile").write_text("setup:\n\ttrue\n")
    assert image_key(project, "bookworm") != key, "make setup provisions the image"


def test_an_image_is_complete_only_with_all_its_files(tmp_path: Path) -> None:
    image = GuestImage(tmp_path)
    for path in (image.rootfs, image.kernel, image.initrd):
        path.write_bytes(b"x")
    assert not image.complete()
    (tmp_path / "manifest.json").write_text('{"key": "k"}')
    assert image.complete() and image.manifest == {"key": "k"}


def test_the_tree_copied_in_has_uncommitted_files_but_not_ignored_ones(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("/results/\n*.pyc\n")
    (repo / "pkg" / "a.py").write_text("A = 1\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    (repo / "pkg" / "a.py").write_text("A = 2\n")  # changed, not committed
    (repo / "pkg" / "new.py").write_text("B = 1\n")  # untracked
    (repo / "pkg" / "a.pyc").write_bytes(b"\0")
    (repo / "results").mkdir()
    (repo / "results" / "old.json").write_text("{}")
    names = {str(p) for p in project_files(repo)}
    assert names == {".gitignore", "pkg/a.py", "pkg/new.py"}
    assert pack_project(repo, tmp_path / "project.tar") == 3
    with tarfile.open(tmp_path / "project.tar") as tar:
        tar.extractall(tmp_path / "unpacked")  # our own archive
    unpacked = tmp_path / "unpacked" / "project"
    assert (unpacked / "pkg" / "a.py").read_text() == "A = 2\n"
    # compiled here, and valid where unpacked: a timestamp .pyc whose recorded source time
    # and size are the unpacked source's, so the guest's Python takes it as it is
    source = unpacked / "pkg" / "a.py"
    header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:16]
    assert header[:4] == importlib.util.MAGIC_NUMBER and header[4:8] == bytes(4)
    assert int.from_bytes(header[8:12], "little") == int(source.stat().st_mtime)
    assert int.from_bytes(header[12:16], "little") == source.stat().st_size


def test_qemu_runs_without_acceleration_or_network_on_a_snapshot(tmp_path: Path) -> None:
    argv = qemu_command(GuestImage(tmp_path / "img"), tmp_path / "share", cpus=2,
                        memory_mb=2048)
    joined = " ".join(argv)
    assert argv[argv.index("-accel") + 1].startswith("tcg")
    assert argv[argv.index("-nic") + 1] == "none" and "-netdev" not in argv
    assert f"file={tmp_path / 'img' / 'rootfs.img'},if=virtio,format=raw,snapshot=on" in joined
    assert f"path={tmp_path / 'share'},mount_tag=host" in joined
    assert "init=/sbin/cdnlab-init" in joined and "console=ttyS0" in joined
    assert f" {SHARE_TAG} /mnt/host" in INIT_STUB  # the tag the image's init mounts
    assert "/bin/sh /mnt/host/guest-init.sh" in INIT_STUB  # where boot.py puts it


def test_the_bench_compares_backends_case_by_case() -> None:
    from cdnlab.bench.fidelity import BenchResult, comparison
    from cdnlab.measure.fidelity import FidelityReport, LossSample, RateSample, RttSample

    def result(backend: str, rtt: float, mbps: float, loss: float) -> BenchResult:
        report = FidelityReport(backend, "kernel", [RttSample("d", "s", 40.0, rtt, rtt, 5, 5)],
                                [RateSample("s", "d", 50.0, mbps)],
                                [LossSample("s", "d", 5.0, loss, 3000)])
        return BenchResult(backend, 0.05, 900.0, report)

    text = comparison([result("netem", 40.4, 47.0, 5.0), result("nfqueue", 41.2, 46.0, 4.5)])
    lines = text.splitlines()
    assert "netem" in lines[1] and "nfqueue vs netem" in lines[1]
    rtt = lines[2].split()
    assert rtt[:3] == ["RTT", "40", "ms"] and rtt[4:6] == ["1.010", "1.030"]
    assert rtt[6] == "+2.00%"  # nfqueue's RTT 2 points further from configured than netem's
    loss = lines[4].split()
    assert loss[4:] == ["1.000", "0.900", "-10.00%"]


def test_pruning_keeps_the_most_recently_used_images_and_live_builds(tmp_path: Path) -> None:
    import os

    from cdnlab.vm.image import prune

    def fake_image(name: str, used: float) -> Path:
        image = GuestImage(tmp_path / name)
        image.directory.mkdir()
        for path in (image.rootfs, image.kernel, image.initrd,
                     image.directory / "manifest.json"):
            path.write_text("{}")
        os.utime(image.directory, (used, used))
        return image.directory

    old, middle, new = fake_image("a", 1000), fake_image("b", 2000), fake_image("c", 3000)
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone_build = tmp_path / f"d.building-{dead.pid}"
    live_build = tmp_path / f"e.building-{os.getpid()}"
    gone_build.mkdir()
    live_build.mkdir()
    assert sorted(prune(tmp_path)) == sorted([old, gone_build])
    assert middle.is_dir() and new.is_dir() and live_build.is_dir() and not old.exists()


def test_the_guest_collects_exactly_the_files_pytest_selects_with_the_vm_mark() -> None:
    from cdnlab.vm.guest import vm_test_files

    files = vm_test_files(ROOT)
    assert {"tests/net/test_shaping.py", "tests/net/test_datapaths.py",
            "tests/scenarios/test_quick_pull.py"} <= set(files)
    listed = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-m", "vm",
                             "-p", "no:cacheprovider", "tests"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout
    selected = {line.split("::")[0] for line in listed.splitlines() if "::" in line}
    assert selected == set(files)


def test_the_guest_knows_itself_by_the_kernel_command_line(tmp_path: Path) -> None:
    from cdnlab.capabilities import EMULATED_CPU_FLAG, emulated_cpu
    from cdnlab.measure.fidelity import EMULATED_CPU_RTT_MS, rtt_tolerance_ms

    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"root=/dev/vda console=ttyS0 {EMULATED_CPU_FLAG}\n")
    assert emulated_cpu(cmdline)
    cmdline.write_text("root=/dev/vda cdnlab.guest=other\n")
    assert not emulated_cpu(cmdline)
    assert not emulated_cpu(tmp_path / "missing")
    assert not emulated_cpu()  # this machine is not the guest
    argv = qemu_command(GuestImage(tmp_path), tmp_path, cpus=2, memory_mb=1024)
    assert EMULATED_CPU_FLAG in argv[argv.index("-append") + 1].split()
    # the allowance for emulated forwarding is the guest's only: 5 % or 1 ms here
    assert rtt_tolerance_ms(10.0) == 1.0 and rtt_tolerance_ms(40.0) == 2.0
    assert EMULATED_CPU_RTT_MS < 0.5 * 10.0  # still far below a missing 5 ms delay


def test_the_guest_goes_on_only_with_netem_and_the_ovs_kernel_datapath() -> None:
    from cdnlab.vm.guest import kernel_paths

    host = "  shaping backend (auto): nfqueue\n  switch datapath (auto): bridge\n"
    missing = kernel_paths(host)
    assert missing[0].startswith("shaping backend is nfqueue, not netem")
    assert missing[1].startswith("switch datapath is bridge, not the OVS kernel datapath")
    guest = "  shaping backend (auto): netem\n  switch datapath (auto): kernel\n"
    assert kernel_paths(guest) == []
    assert [m.split(",")[0] for m in kernel_paths("doctor crashed")] == [
        "shaping backend is none", "switch datapath is none"]
