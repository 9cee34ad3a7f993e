"""``fab verify``: check a backup set on the laptop, offline, against its manifests.

Every archive and dump is read once, streaming: its sha256 and size must match
the host manifest, every archive member must match the listing (bytes, mode,
owner), the archive must hold only the trees of the layout the manifest names,
and every dump must end with PostgreSQL's completion line. The set manifest
records each host manifest's sha256, so an edited manifest is caught too.
"""

from __future__ import annotations

import json
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from maasops import backupset, crypto, layouts, report
from maasops.plan import actual

SEALED = "encrypted: checksums only, --identity checks the contents"
# What a damaged gzip or tar stream raises while it is read.
UNREADABLE = (OSError, EOFError, ValueError, tarfile.TarError, zlib.error)


@dataclass
class HostCheck:
    """One host of a set: its manifest and what is wrong with its files (nothing, when ok)."""

    host: str
    manifest: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    size: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


@dataclass
class SetCheck:
    """A whole set: its manifest, its hosts and set-wide problems."""

    path: Path
    manifest: dict
    hosts: dict[str, HostCheck]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the set and every host in it are intact."""
        return not self.problems and all(h.ok for h in self.hosts.values())


@dataclass(frozen=True)
class Reading:
    """How deep a check reads: decrypting with ``ids``; the files' contents, or only their sizes."""

    ids: list | None = None
    content: bool = True


def _load_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def _read(hc: HostCheck, what: str, path: Path, entry: dict, reader, how: Reading):
    """Run ``reader(src, compress)`` over a set file's plaintext and check the file's sha256/size.

    Returns the reader's result, or None when the file is missing, unreadable, encrypted with no
    identity given (then only the stored checksums are checked), or ``how.content`` is False (then
    only its size is).
    """
    if not path.is_file():
        hc.problems.append(f"{what} {path.name} is missing")
        return None
    ids = how.ids
    if not how.content:
        size = path.stat().st_size
        hc.size += size
        if size != entry.get("size"):
            hc.problems.append(f"{what} size differs from the manifest")
        if entry.get("encryption") and ids is None and SEALED not in hc.notes:
            hc.notes.append(SEALED)
        elif entry.get("encryption"):  # the identity must open it: decrypt the first block
            try:
                with crypto.decrypted(path, ids) as src:
                    src.read(backupset.CHUNK)
            except UNREADABLE as exc:
                hc.problems.append(f"{what} cannot be read: {exc}")
        return None
    compress = entry.get("compression", "none")
    try:
        if not entry.get("encryption"):
            with open(path, "rb") as f:
                got = reader(f, compress)
            stored, want = got[1:3], entry.get("sha256")  # both readers return (result, sha256, size, ...)
        else:
            stored, want = (backupset.file_sha256(path), path.stat().st_size), entry.get("sha256")
            got = None
            if ids is not None:
                with crypto.decrypted(path, ids) as src:
                    got = reader(src, compress)
                if got[1] != entry.get("plain_sha256"):
                    hc.problems.append(f"{what}'s decrypted sha256 differs from the manifest")
            elif SEALED not in hc.notes:
                hc.notes.append(SEALED)
    except UNREADABLE as exc:
        hc.problems.append(f"{what} cannot be read: {exc}")
        return None
    hc.size += stored[1]
    if (stored[0], stored[1]) != (want, entry.get("size")):
        hc.problems.append(f"{what} sha256/size differ from the manifest")
        return None
    return got


def _check_archive(hc: HostCheck, host_dir: Path, how: Reading) -> None:
    arch = hc.manifest.get("archive") or {}
    if not arch:
        hc.problems.append("the manifest lists no archive")
        return
    got = _read(hc, "archive", host_dir / arch["file"], arch, backupset.read_archive, how)
    if got is not None:
        files = got[0]
        if files != arch.get("files"):
            hc.problems.append("archive members differ from the manifest listing")
    elif how.content or hc.problems:
        return
    else:  # the listing stands for the members: a restore checks the bytes against the sha256 as it uploads
        files = arch.get("files", [])
    hc.files = len(files)
    roots = [t.lstrip("/") for t in arch.get("actual_trees", [])]
    stray = [f["path"] for f in files
             if not any(f["path"].lstrip("/") == r or f["path"].lstrip("/").startswith(r + "/") for r in roots)]
    if stray:
        hc.problems.append(f"archive holds paths outside its trees: {', '.join(stray[:3])}")


def _check_layout(hc: HostCheck) -> None:
    m = hc.manifest
    try:
        lay = backupset.manifest_layout(m)
    except (KeyError, ValueError, layouts.UnknownLayout) as exc:
        hc.problems.append(f"manifest names no known MAAS layout: {exc}")
        return
    if lay.name != m.get("layout"):
        hc.problems.append(f"manifest says layout {m.get('layout')}, MAAS {m['maas_version']} is {lay.name}")
    allowed = set(lay.trees + lay.region_trees)
    trees = (m.get("archive") or {}).get("trees", [])
    if not set(trees) <= allowed:
        hc.problems.append(f"archive trees {sorted(set(trees) - allowed)} are not {lay.name} trees")


def _check_dump(hc: HostCheck, host_dir: Path, how: Reading) -> None:
    d = hc.manifest.get("dump")
    if not d:
        return
    got = _read(hc, "dump", host_dir / d["file"], d, backupset.read_dump, how)
    if got is not None and got[0] != backupset.completion_line(d.get("kind", "")):
        hc.problems.append(f"dump is incomplete (last line {got[0][:50]!r})")


def check_host(set_dir: Path, host: str, entry: dict, how: Reading = Reading()) -> HostCheck:
    """Check one host's files in a set against its manifest.

    Reads every byte once (decrypting with ``how.ids``); with ``how.content`` False, only
    the manifest, the layout and the files' sizes are checked, in no time.
    """
    hc = HostCheck(host)
    host_dir = set_dir / host
    mpath = host_dir / backupset.MANIFEST
    try:
        hc.manifest = _load_json(mpath)
    except (OSError, ValueError) as exc:
        hc.problems.append(f"manifest cannot be read: {exc}")
        return hc
    recorded = entry.get("manifest_sha256")
    if recorded and backupset.file_sha256(mpath) != recorded:
        hc.problems.append("manifest.json was changed after the backup (sha256 differs from the set's record)")
    _check_layout(hc)
    _check_archive(hc, host_dir, how)
    _check_dump(hc, host_dir, how)
    return hc


def secret_digest(manifest: dict) -> str | None:
    """sha256 of the host's MAAS secret file as archived (from the listing), or None when not archived."""
    try:
        lay = backupset.manifest_layout(manifest)
    except (KeyError, ValueError, layouts.UnknownLayout):
        return None
    path = actual(lay.secret, manifest.get("snap_data"))
    entry = next((f for f in (manifest.get("archive") or {}).get("files", []) if f["path"] == path), None)
    return entry.get("sha256") if entry else None


def verify_set(set_dir: Path, parallel: int = 4, ids: list | None = None, content: bool = True) -> SetCheck:
    """Check a whole set (decrypting with ``ids`` if it is encrypted); never raises for a damaged set.

    ``content`` False checks everything but the files' bytes (see :func:`check_host`).
    """
    how = Reading(ids, content)
    try:
        manifest = _load_json(set_dir / backupset.MANIFEST)
    except (OSError, ValueError) as exc:
        return SetCheck(set_dir, {}, {}, [f"{set_dir}: not a backup set ({exc})"])
    sc = SetCheck(set_dir, manifest, {})
    if not manifest.get("complete") or set_dir.name.endswith(backupset.PARTIAL):
        sc.problems.append("the set is incomplete: its backup did not finish on every host")
    entries = {h: e for h, e in manifest.get("hosts", {}).items() if e.get("status") == "ok"}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        checks = pool.map(lambda item: check_host(set_dir, *item, how), entries.items())
        sc.hosts = {hc.host: hc for hc in checks}
    region_secrets = {secret_digest(h.manifest) for h in sc.hosts.values()
                      if "region" in h.manifest.get("roles", [])} - {None}
    if len(region_secrets) > 1:
        sc.problems.append("the regions in this set have different secrets")
    return sc


def read_manifests(set_dir: Path) -> SetCheck:
    """The set's and its hosts' manifests as written, without reading archives or dumps (see verify_set)."""
    manifest = _load_json(set_dir / backupset.MANIFEST)
    hosts = {h: HostCheck(h, _load_json(set_dir / h / backupset.MANIFEST))
             for h, e in manifest.get("hosts", {}).items() if e.get("status") == "ok"}
    return SetCheck(set_dir, manifest, hosts)


def rows(sc: SetCheck) -> list[dict]:
    """Table rows for a set check."""
    out = []
    for h in sorted(sc.hosts.values(), key=lambda h: h.host):
        m = h.manifest
        out.append({"host": h.host, "layout": m.get("layout", "?"), "version": m.get("maas_version", "?"),
                    "roles": "+".join(m.get("roles", [])), "files": h.files,
                    "dump": "yes" if m.get("dump") else "-", "size": report.human_bytes(h.size),
                    "result": ("ok" if h.ok else "BAD: " + "; ".join(h.problems))
                    + "".join(f" ({n})" for n in h.notes)})
    return out
