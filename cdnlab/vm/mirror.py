"""The Debian mirror the guest image is built from: read from this machine's apt sources.

The repository names no mirror. `debootstrap` gets the first source of this machine's apt
configuration that serves the host's own suite (`VERSION_CODENAME` in /etc/os-release) with
the `main` component, from either format apt reads: deb822 `*.sources` files and one-line
`sources.list` entries. Files apt ignores (other extensions, such as `.disabled`) are
ignored here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdnlab.errors import CdnlabError

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class Source:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_deb822(text: str) -> list[Source]:
    """`Types: deb` stanzas of a `.sources` file (comment lines and `Enabled: no` skipped)."""
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace() and key:  # a folded continuation line
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            sources.append(Source(uri, tuple(fields.get("suites", "").split()),
                                  tuple(fields.get("components", "").split())))
    return sources


def parse_one_line(text: str) -> list[Source]:
    """`deb [options] URI suite component…` lines of a `sources.list`."""
    sources = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # [arch=amd64 signed-by=…]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 3:
            sources.append(Source(words[0], (words[1],), tuple(words[2:])))
    return sources


def apt_sources(apt_dir: Path = APT_DIR) -> list[Source]:
    sources = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        sources += parse_one_line(main_list.read_text())
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                sources += parse_one_line(path.read_text())
            elif path.suffix == ".sources":
                sources += parse_deb822(path.read_text())
    return sources


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise CdnlabError(f"{os_release}: no VERSION_CODENAME; the guest image follows the host's "
                      "Debian release, so this must be a Debian (or derived) system")


def debian_mirror(suite: str, apt_dir: Path = APT_DIR) -> str:
    """The URI of the first source serving `suite` with `main`."""
    for source in apt_sources(apt_dir):
        if suite in source.suites and "main" in source.components and \
                source.uri.split(":", 1)[0] in ("http", "https", "file"):
            return source.uri.rstrip("/")
    raise CdnlabError(f"no apt source in {apt_dir} serves '{suite} main'; add one "
                      f"(the guest image is built from the same mirror as the host)")
