"""The content store: a directory nginx serves, with titles published atomically.

    STORE/catalog.json          every published title (see catalog.py)
    STORE/<title>               a symlink to the title's current version
    STORE/.titles/<title>@<key> a complete version: manifest.mpd and its segments
    STORE/.staging/, .incoming/ work in progress (hidden: nginx refuses dot paths)
    STORE/steering.json         present when the run steers: each version published then
                                also gets steered.mpd (`steered_mpd`)

A version is written in `.staging`, checked, then renamed into `.titles`; the title's
symlink is swapped in one `rename`, and the catalog rewritten the same way, under an
exclusive lock on STORE/.lock. A reader therefore sees the old version or the new one,
never part of either, and a failed ingest leaves the store as it was.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nodes.common.conventions import STEERED_MPD
from nodes.common.dash import ManifestError, add_steering
from nodes.origin.errors import ContentError, disk_full

CATALOG = "catalog.json"
STEERING = "steering.json"
_TITLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_title_id(title: str) -> str:
    if not _TITLE.match(title) or title == CATALOG:
        raise ContentError(f"title id {title!r} is not allowed: use 1–64 letters, digits, "
                           "'_', '-' or '.', starting with a letter or digit", 400)
    return title


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in (".titles", ".staging", ".incoming"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    # -- reading ---------------------------------------------------------------------------
    def catalog(self) -> dict[str, Any]:
        path = self.root / CATALOG
        if not path.exists():
            return {"version": 1, "titles": {}}
        return dict(json.loads(path.read_text()))

    def entry(self, title: str) -> dict[str, Any] | None:
        return self.catalog()["titles"].get(title)

    def title_dir(self, title: str) -> Path:
        return self.root / title

    def set_steering(self, text: str) -> None:
        """Steer from now on: `text` is the JSON `steered_mpd` reads, checked first."""
        try:
            steering = json.loads(text)
            if not isinstance(steering, dict) or not isinstance(steering["server_url"], str) \
                    or not isinstance(steering["pathways"], dict) or not steering["pathways"]:
                raise ValueError("needs server_url and a non-empty pathways mapping")
        except (ValueError, KeyError) as err:
            raise ContentError(f"--steering: {err}", 400) from err
        tmp = self.root / ".staging" / f"{STEERING}.{uuid.uuid4().hex[:6]}"
        tmp.write_text(json.dumps(steering))
        os.replace(tmp, self.root / STEERING)

    def steering(self) -> dict[str, Any] | None:
        """The run's steering settings (`steered_mpd`), if it steers."""
        path = self.root / STEERING
        return dict(json.loads(path.read_text())) if path.exists() else None

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def staging_dir(self, title: str) -> Path:
        staged = Path(tempfile.mkdtemp(prefix=f"{title}-", dir=self.root / ".staging"))
        staged.chmod(0o755)  # served as it is once published
        return staged

    def incoming_file(self) -> Path:
        return self.root / ".incoming" / uuid.uuid4().hex

    def publish(self, entries: list[tuple[Path, dict[str, Any]]]) -> None:
        """Publish staged versions (directory, catalog entry) together: everything that can
        fail (moving versions in, new links, the new catalog) is prepared first and undone
        on failure; only renames remain to commit."""
        retired: list[Path] = []
        prepared: list[tuple[Path, Path, Path]] = []  # version, temporary link, title link
        catalog_tmp = self.root / ".staging" / f"{CATALOG}.{uuid.uuid4().hex[:6]}"
        try:
            with self.locked():
                catalog = self.catalog()
                steering = self.steering()
                for staged, entry in entries:
                    title = check_title_id(entry["title"])
                    if steering is not None:
                        steered_mpd(staged, title, steering)
                    link = self.root / title
                    if link.exists() and not link.is_symlink():
                        raise ContentError(f"{link} exists and is not a published title", 409)
                    version = self.root / ".titles" / (
                        f"{title}@{entry['content_key'][:12]}-{uuid.uuid4().hex[:6]}")
                    os.rename(staged, version)
                    tmp_link = self.root / ".staging" / f"{title}.link-{uuid.uuid4().hex[:6]}"
                    prepared.append((version, tmp_link, link))
                    os.symlink(os.path.relpath(version, self.root), tmp_link)
                    catalog["titles"][title] = entry
                with catalog_tmp.open("w") as out:
                    json.dump(catalog, out, separators=(",", ":"))
                    out.flush()
                    os.fsync(out.fileno())
                for _version, tmp_link, link in prepared:
                    if link.is_symlink():
                        retired.append(link.parent / os.readlink(link))
                    os.replace(tmp_link, link)
                os.replace(catalog_tmp, self.root / CATALOG)
                prepared.clear()
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise disk_full("publishing") from err
            raise
        finally:
            catalog_tmp.unlink(missing_ok=True)
            for version, tmp_link, _link in prepared:  # not committed: undo
                tmp_link.unlink(missing_ok=True)
                shutil.rmtree(version, ignore_errors=True)
        for old in retired:
            shutil.rmtree(old, ignore_errors=True)


def steered_mpd(directory: Path, title: str, steering: dict[str, Any]) -> None:
    """`steered.mpd` beside a version's manifest.mpd: the same presentation with content
    steering (nodes/common/dash.py `add_steering`): the steering server's URL
    (`server_url`) and one BaseURL per pathway, `pathways` mapping each service location
    (a cluster) to its host, so the pathway's segments are asked of
    `http://<host>/<title>/`; `default` the default service location."""
    source = directory / "manifest.mpd"
    try:
        text = add_steering(source.read_bytes(), steering["server_url"],
                            [(name, f"http://{host}/{title}/")
                             for name, host in steering["pathways"].items()],
                            steering.get("default"))
    except (ManifestError, KeyError) as err:
        raise ContentError(f"{title}: cannot write the steered MPD: {err}", 500) from err
    (directory / STEERED_MPD).write_text(text)
