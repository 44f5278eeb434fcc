"""Inside the test guest: prove the kernel paths, run the selected root tests and the benchmark.

Run by `guest-init.sh` as `python -m cdnlab.vm.guest --out DIR` in the copied project tree,
on a kernel that has sch_netem and the openvswitch module. Steps, each timed:

1. `cdnlab doctor --fix` (starts Open vSwitch), then a check that `auto` now means the
   `netem` backend and the OVS `kernel` datapath: otherwise the tests below would quietly
   exercise the host's paths again, so the run fails here, naming what is missing.
2. `pytest -m vm`: the root tests marked for this tier (fidelity on netem, the OVS kernel
   datapath, one short scenario), which choose netem and the kernel datapath by themselves.
3. `cdnlab bench fidelity --quick`: netem and nfqueue measured on this one kernel in one run.

With `DIR/command.json` (from `cdnlab vm run -- CMD`), that command runs instead of 2 and 3.
`DIR/status` holds 0 when every step passed, else 1; `DIR/result.json` has each step's exit
status and seconds; the pytest JUnit XML and the benchmark table are beside them.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

PYTEST_OPTIONS = ["-m", "vm", "-p", "no:cacheprovider"]
_VM_MARK = re.compile(r"^(@pytest\.mark\.vm$|pytestmark\b.*\bpytest\.mark\.vm\b)", re.MULTILINE)


def _step(name: str, argv: list[str], out: Path, results: dict[str, dict[str, float]],
          timeout_s: float) -> int:
    print(f"guest: == {name}: {' '.join(argv)}", flush=True)
    started = time.monotonic()
    log_path = out / f"{name}.txt"
    with log_path.open("w") as log:
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, errors="replace")
        except OSError as exc:
            print(f"guest: {name} did not start: {exc}", flush=True)
            results[name] = {"status": 127, "seconds": 0.0}
            return 127
        assert process.stdout is not None
        for line in process.stdout:  # to the console (the host echoes it) and to out/
            log.write(line)
            print(line, end="", flush=True)
        try:
            status = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
            print(f"guest: {name} timed out after {timeout_s:.0f} s", flush=True)
    seconds = time.monotonic() - started
    results[name] = {"status": status, "seconds": round(seconds, 1)}
    print(f"guest: == {name}: exit {status} in {seconds:.0f} s", flush=True)
    return status


def vm_test_files(root: Path) -> list[str]:
    """The test files holding `vm` tests, relative to `root`: pytest collects only these
    (importing every test module costs seconds on an emulated CPU)."""
    return sorted(str(path.relative_to(root)) for path in (root / "tests").rglob("test_*.py")
                  if _VM_MARK.search(path.read_text()))


def kernel_paths(doctor_report: str) -> list[str]:
    """What the guest lacks, read from `cdnlab doctor`'s report (its `auto` choices): an
    empty list when they are the netem backend and the OVS kernel datapath."""
    backend = re.search(r"shaping backend \(auto\): (\S+)", doctor_report)
    datapath = re.search(r"switch datapath \(auto\): (\S+)", doctor_report)
    missing = []
    if not backend or backend[1] != "netem":
        missing.append(f"shaping backend is {backend[1] if backend else 'none'}, not netem "
                       "(sch_netem)")
    if not datapath or datapath[1] != "kernel":
        missing.append(f"switch datapath is {datapath[1] if datapath else 'none'}, not the "
                       "OVS kernel datapath (openvswitch module and ovs-vswitchd)")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdnlab.vm.guest")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    failed = _step("doctor", [sys.executable, "-m", "cdnlab.cli", "doctor", "--fix"], out,
                   results, 120) != 0
    missing = kernel_paths((out / "doctor.txt").read_text())
    for problem in missing:
        print(f"guest: FAIL: {problem}", flush=True)
    failed |= bool(missing)
    command_file = out / "command.json"
    if not missing and command_file.is_file():  # `cdnlab vm run -- …`: that, and only that
        failed |= _step("command", json.loads(command_file.read_text()), out, results,
                        3600) != 0
    elif not missing:
        failed |= _step("pytest", [sys.executable, "-m", "pytest", *PYTEST_OPTIONS,
                                   *vm_test_files(Path.cwd()),
                                   f"--junitxml={out / 'junit.xml'}"], out, results, 600) != 0
        failed |= _step("bench-fidelity", [sys.executable, "-m", "cdnlab.cli", "bench",
                                           "fidelity", "--quick"], out, results, 300) != 0
    (out / "result.json").write_text(json.dumps({"steps": results, "missing": missing},
                                                indent=2) + "\n")
    (out / "status").write_text("1\n" if failed else "0\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
