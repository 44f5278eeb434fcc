"""`cdnlab vm build|test|run` (`make vmtest`): the image, one boot, a verdict as exit status.

`test` builds the guest image or takes it from the cache, boots it with the project tree,
and prints one summary line per guest step; it exits 0 only if the guest reported status 0
in time. A failed run keeps the guest's console log and output under `results/`. On a host
whose own kernel has netem and the openvswitch module (the Vagrant VM), the root tests have
covered those paths already, and `test` says so and boots nothing unless asked (`always`).
`run -- CMD` boots the same guest and runs one command of one's own in the tree instead,
e.g. a single test while working on a netem path: `cdnlab vm run -- pytest -x -k jitter`.
"""

from __future__ import annotations

import time
from pathlib import Path

from cdnlab.capabilities import detect
from cdnlab.vm.boot import boot
from cdnlab.vm.image import DEFAULT_CACHE, build_image

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def build(cache: Path = DEFAULT_CACHE, rebuild: bool = False) -> int:
    image = build_image(PROJECT_ROOT, cache, rebuild)
    manifest = image.manifest
    print(f"vm image: {image.directory} (built in {manifest['built_s']} s, "
          f"{len(manifest['packages'])} packages listed)")
    return 0


def host_has_the_kernel_paths() -> bool:
    caps = detect()
    return caps.netem and caps.ovs_kernel_module


def test(cache: Path = DEFAULT_CACHE, rebuild: bool = False, timeout_s: float = 900.0,
         echo: bool = True, always: bool = False, command: list[str] | None = None) -> int:
    """The tier's steps in the guest, or `command` instead (`cdnlab vm run -- CMD`)."""
    if not always and not command and host_has_the_kernel_paths():
        print("vmtest: this kernel has sch_netem and the openvswitch module, so the root "
              "tests already ran those paths here; nothing to add (--always boots the guest)")
        return 0
    started = time.monotonic()
    image = build_image(PROJECT_ROOT, cache, rebuild)
    run = boot(image, PROJECT_ROOT, PROJECT_ROOT / "results", timeout_s, echo=echo,
               command=command)
    for name, step in run.result.get("steps", {}).items():
        print(f"vmtest: {name:<15} exit {step['status']}  {step['seconds']:>6.0f} s")
    for problem in run.result.get("missing", []):
        print(f"vmtest: guest kernel: {problem}")
    verdict = "passed" if run.passed else (
        f"timed out after {timeout_s:.0f} s" if run.timed_out else
        "failed" if run.status is not None else "failed: the guest wrote no status")
    print(f"vmtest: {verdict}; guest {run.seconds:.0f} s, in all "
          f"{time.monotonic() - started:.0f} s")
    if run.kept:
        print(f"vmtest: console log and guest output kept in {run.kept}")
    return 0 if run.passed else 1
