"""The compiled delay server of the `nfqueue` backend (`delayd.c`): where its binary is,
and building it.

The binary is named after a hash of its source and compiler flags, under `build/` beside
the source, so an edited source is never served by a stale binary. `make setup` builds it
(`python -m cdnlab.net.shaping.helper build`); a run builds it on first use if it is
missing, and `python -m cdnlab.net.shaping.helper exec -- ARGS` builds if need be and
becomes it, which is how the other machines of a split run and the real-kernel guest,
which get the source tree but not its build directory, start it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cdnlab.errors import EnvironmentProblem

SOURCE = Path(__file__).with_name("delayd.c")
FLAGS = ["-O2", "-Wall", "-std=gnu11"]
LIBS = ["-lm"]
BUILD_DIR = Path(__file__).with_name("build")


def binary_path() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS + LIBS).encode())
    return BUILD_DIR / f"cdnlab-delayd-{digest.hexdigest()[:12]}"


def compiler() -> str | None:
    return next((c for c in (os.environ.get("CC"), "cc", "gcc") if c and shutil.which(c)),
                None)


def ensure_built() -> Path:
    """The binary, compiled now if missing; EnvironmentProblem naming the fix if it can't be."""
    target = binary_path()
    if target.exists():
        return target
    cc = compiler()
    if cc is None:
        raise EnvironmentProblem(
            "the nfqueue backend's delay server must be compiled and no C compiler is "
            "installed: run `sudo make setup` (it installs gcc) or `apt-get install gcc "
            "libc6-dev`")
    BUILD_DIR.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=BUILD_DIR, prefix=".building-", delete=False) as tmp:
        partial = Path(tmp.name)
    try:
        done = subprocess.run([cc, *FLAGS, "-o", str(partial), str(SOURCE), *LIBS],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise EnvironmentProblem(f"compiling {SOURCE.name} failed ({cc}): "
                                     f"{done.stderr.strip()[-600:]}")
        partial.chmod(0o755)
        partial.replace(target)  # atomic: a concurrent build finds a whole binary or none
    finally:
        partial.unlink(missing_ok=True)
    for stale in BUILD_DIR.glob("cdnlab-delayd-*"):
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        path = ensure_built()
    except EnvironmentProblem as problem:
        print(f"cdnlab-delayd: {problem}", file=sys.stderr)
        return 2
    if args[:1] == ["build"]:
        print(path)
        return 0
    if args[:1] == ["exec"]:
        rest = args[2:] if args[1:2] == ["--"] else args[1:]
        os.execv(path, [str(path), *rest])
    print("usage: python -m cdnlab.net.shaping.helper build | exec -- ARGS", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
