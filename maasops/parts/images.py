"""The images part of a set: image-storage on its own, sent only when it changed (backups into a restic repository).

What to back up (:func:`backup_steps`): the fingerprint, then the archive unless the fingerprint
is the last set's. How to check it offline (:func:`check`): as the config archive is checked
(:func:`maasops.parts.config.check_listed`), for its own trees. How to restore it
(:func:`restore_steps`): upload, then extract inside the config part's files phase (image-storage
lies inside a config tree, moved aside with it: that move's undo is what undoes it).

From MAAS 3.5 a region keeps its boot images as files in image-storage
(:data:`maasops.layouts` ``image_dirs``): gigabytes that rarely change. A backup
into a repository archives them apart from the config trees, as ``images.tar``, and
records a fingerprint of their listing. The next backup computes the fingerprint
again with the units stopped; when it is the same, the host sends nothing and the
new set reuses the earlier set's snapshot (``origin`` in the host manifest). The
repository's prune keeps a snapshot while any kept set uses it (maasops.retention).

The fingerprint is that of restic's own change detection, taken further: for every
file and directory its type, inode, ctime, mtime, size, mode, owner and path. A file
rewritten in place changes its ctime, which nothing can set back, so an unchanged
fingerprint means unchanged files. A set that reuses images records the same
sha256 and listing as the set it reuses, so verify and restore check the bytes read
from the repository exactly as if this set had sent them.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from maasops import backupset, confine
from maasops import manifest as mf
from maasops.backupset import SetFiles
from maasops.command import Cmd, Q
from maasops.hostfiles import receive_emitted
from maasops.hostpaths import UPLOAD_IMAGES, run_dir
from maasops.manifest import HostManifest
from maasops.parts import Read, config
from maasops.plan import Phase, Step, StepId
from maasops.probe import HostFacts

EMPTY = hashlib.sha256(b"").hexdigest()
FINGERPRINT = re.compile(r"^([0-9a-f]{64})\b")


@dataclass(frozen=True)
class ImagesSpec:
    """What the images step fetches, and what an unchanged image-storage reuses."""

    file: str
    trees: tuple[str, ...]
    actual_trees: tuple[str, ...]
    previous: mf.Images | None  # the last set's record (its origin resolved), reused when the fingerprint matches


def fingerprint(dirs: tuple[str, ...]) -> Cmd:
    """Prints the sha256 of the listing of ``dirs`` (read-only): what tells an unchanged image-storage."""
    listing = Cmd("find", *map(Q, dirs), "-printf", Q("%y %i %C@ %T@ %s %m %U %G %p\\0"))
    return Cmd(listing, "| LC_ALL=C sort -z | sha256sum | cut -c1-64")  # under pipefail (maasops.channel)


def backup_steps(facts: HostFacts, ext: str, previous: mf.Images | None, compress: str,
                 archive: Callable[[tuple[str, ...]], Cmd],
                 limit: int | None) -> tuple[list[Step], ImagesSpec | None, list[str]]:
    """What to back up: the steps (run with the units stopped) that fingerprint the host's image-storage and send it
    as ``images.tar`` (``archive`` of its paths, compressed as ``compress``) unless the fingerprint is
    ``previous``'s; none when the host has no image-storage. No notes."""
    lay = facts.layout
    trees = tuple(p for p in lay.image_dirs if p in facts.present)
    if not trees:
        return [], None, []
    actual = tuple(facts.on_host(p) for p in trees)
    reuse = previous if previous and previous.actual_trees == actual and previous.compression == compress else None
    send = archive(actual)
    if reuse:
        send = Cmd("if [ \"$(", fingerprint(actual), ")\" =", Q(reuse.fingerprint), "]; then exit 0; fi;", send)
    size = sum(facts.sizes.get(p, 0) for p in trees)
    label = f"image-storage: send it unless unchanged since {reuse.origin}" if reuse else "archive image-storage"
    spec = ImagesSpec(mf.IMAGES + ext, trees, actual, reuse)
    return [Step(StepId.IMAGES_STATE, "image-storage: fingerprint its listing", fingerprint(actual)),
            Step(StepId.IMAGES, label, send, fetch=spec.file, limit=limit,
                 estimate=size if facts.sizes and compress == "none" else None)], spec, []


def read(src: BinaryIO, compress: str, limit: int | None = None) -> tuple[list[dict], str, int]:
    """The images part's listing as it streams (:func:`maasops.backupset.read_archive`); an empty stream (the
    host found its image-storage unchanged) lists nothing."""
    first = src.read(backupset.CHUNK)
    if not first:
        return [], EMPTY, 0
    return backupset.read_archive(_Prepended(first, src), compress, limit)


class _Prepended(io.RawIOBase):
    """``first``, then the rest of ``src`` (which it never closes)."""

    def __init__(self, first: bytes, src: BinaryIO):
        self._first, self._src = first, src

    def readable(self) -> bool:
        """Always true."""
        return True

    def readinto(self, b) -> int:
        """Read into ``b``: what is left of ``first``, then from ``src``."""
        data, self._first = (self._first[:len(b)], self._first[len(b):]) if self._first else (
            self._src.read(len(b)), b"")
        b[:len(data)] = data
        return len(data)


def host_record(spec: ImagesSpec, state: str, got_size: int, stored: dict, listing: list[dict],
                compress: str) -> mf.Images | None:
    """The host manifest's images record: the previous one when nothing came (and the fingerprint is its),
    a new one when the images were sent; None when what came cannot be trusted (caller fails the host)."""
    found = FINGERPRINT.match(state.strip())
    if not found:
        return None
    if got_size == 0:
        prev = spec.previous
        return prev if prev is not None and prev.fingerprint == found.group(1) else None
    return mf.Images(spec.file, compress, **stored, trees=spec.trees, actual_trees=spec.actual_trees,
                     files=tuple(mf.Member(**m) for m in listing), fingerprint=found.group(1))


def check(m: HostManifest, read: Read) -> list[str]:
    """How to check it offline: the host's images part (if it has one) read back through ``read`` as the config
    archive is (:func:`maasops.parts.config.check_listed`), for its own trees."""
    return config.check_listed(m, read, "images", m.images, m.images.trees) if m.images else []


def upload(rdir: str) -> str:
    """Where the images part is uploaded in a run directory (as the laptop re-wrote it: an uncompressed tar)."""
    return f"{rdir}/{UPLOAD_IMAGES}"


def restore_steps(m: HostManifest, files: SetFiles, target: HostFacts, run_id: str, *,
                  identity: str | None) -> list[Step]:
    """How to restore it, by phase: upload (as the config archive is), files (extract, with the config archive's
    owners and snap transform; :func:`maasops.parts.config.restore_steps` places it after the archive's extraction,
    before its check). Nothing when the host has no images part."""
    if not m.images:
        return []
    images, dest = m.images, upload(run_dir(run_id))
    owners = target.layout.owner_names(set(m.roles))
    return [Step(StepId.UPLOAD_IMAGES, "upload image-storage", receive_emitted(dest), Phase.UPLOAD,
                 send=files.send(f"{m.host}/{images.file}", identity=identity if images.encryption else None),
                 inspect_upload=True, estimate=confine.emitted_size(images.files)),
            Step(StepId.EXTRACT_IMAGES, "extract image-storage", confine.extract_command(
                dest, tuple(t.lstrip("/") for t in images.actual_trees), owners, config.transform(m, target)),
                 Phase.FILES)]
