"""cdnlab as users install it: `pip install .` (not editable) into a fresh venv, used from
another directory — the CLI finds its scenarios, topologies and traces through its
packages, `--version` answers, and pytest there lists the plugin's fixtures. The fresh
venv borrows the dependencies of the venv running this test (a .pth file) instead of
downloading them again; that every module imported is declared is checked apart."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# module imported → the distribution that provides it (None: not from PyPI, installed by
# make setup from Debian: Mininet's Python package comes with the mininet package)
DISTRIBUTIONS = {"yaml": "PyYAML", "matplotlib": "matplotlib", "ffmpeg": "ffmpeg-python",
                 "dnslib": "dnslib", "dns": "dnspython", "scapy": "scapy",
                 "os_ken": "os-ken", "numpy": "numpy", "mininet": None}
OURS = {"cdnlab", "nodes", "topologies", "scenarios", "traces"}
# no PYTHONPATH: the installed copy, not a checkout, must answer
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def imported_modules() -> set[str]:
    found: set[str] = set()
    for package in ("cdnlab", "nodes", "topologies"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - OURS - {"__future__", "pytest"}


def test_every_imported_distribution_is_declared() -> None:
    """pytest is imported by the plugin only, which pytest itself loads."""
    declared = {d.split(">")[0].split("=")[0].strip().lower() for d in tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    imported = imported_modules()
    unknown = imported - set(DISTRIBUTIONS)
    assert not unknown, f"imported, and not in this test's map: {unknown}"
    missing = {DISTRIBUTIONS[m] for m in imported if DISTRIBUTIONS[m]} - {
        d for d in declared} - {d.lower() for d in declared}
    assert not {m.lower() for m in missing} - declared, f"not declared: {missing}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
         "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    borrowed = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (site / "borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n")
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", "--quiet",
                           str(ROOT)], capture_output=True, text=True, timeout=600,
                          check=False, env=CLEAN_ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    return venv


def test_an_installed_cdnlab_finds_what_it_ships(installed: Path, tmp_path: Path) -> None:
    cdnlab = str(installed / "bin" / "cdnlab")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cdnlab, *args], capture_output=True, text=True, cwd=tmp_path,
                              check=False, timeout=120, env=CLEAN_ENV)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == "cdnlab 0.1.0"
    listing = run("list")
    assert "youtube_pull" in listing.stdout and "isp_mesh" in listing.stdout
    assert "step_down.csv" in listing.stdout
    valid = run("validate", "youtube_pull")
    assert valid.returncode == 0 and "ok — youtube_pull" in valid.stdout, valid.stderr
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import cdnlab, scenarios; print(cdnlab.__file__, "
                            "scenarios.__file__)"], capture_output=True, text=True,
                           cwd=tmp_path, check=True, env=CLEAN_ENV).stdout
    assert str(ROOT) not in where and str(installed) in where, where
    simulated = run("abr", "simulate", "--trace", "step_down.csv", "--algo", "bba",
                    "--duration", "20")
    assert simulated.returncode == 0, simulated.stderr


def test_pytest_elsewhere_lists_the_plugins_fixtures(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text("def test_nothing():\n    pass\n")
    done = subprocess.run([str(installed / "bin" / "python"), "-m", "pytest", "--fixtures",
                           "-p", "no:cacheprovider"], capture_output=True, text=True,
                          cwd=tmp_path, check=False, timeout=120, env=CLEAN_ENV)
    assert "run_scenario" in done.stdout and "cdnlab_results" in done.stdout, done.stdout[-800:]
