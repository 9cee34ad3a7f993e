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

from maasops import backupset, layouts, report
from maasops.plan import actual

# What a damaged gzip or tar stream raises while it is read.
UNREADABLE = (OSError, EOFError, ValueError, tarfile.TarError, zlib.error)


@dataclass
class HostCheck:
    """One host of a set: its manifest and what is wrong with its files (nothing, when ok)."""

    host: str
    manifest: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
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


def _load_json(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def _check_archive(hc: HostCheck, host_dir: Path) -> None:
    m = hc.manifest
    arch = m.get("archive") or {}
    path = host_dir / arch.get("file", "")
    if not arch or not path.is_file():
        hc.problems.append(f"archive {arch.get('file', '?')} is missing")
        return
    try:
        files, sha, size = backupset.archive_listing(path, arch.get("compression", "none"))
    except UNREADABLE as exc:
        hc.problems.append(f"archive cannot be read: {exc}")
        return
    hc.files, hc.size = len(files), hc.size + size
    if (sha, size) != (arch.get("sha256"), arch.get("size")):
        hc.problems.append("archive sha256/size differ from the manifest")
    elif files != arch.get("files"):
        hc.problems.append("archive members differ from the manifest listing")
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


def _check_dump(hc: HostCheck, host_dir: Path) -> None:
    d = hc.manifest.get("dump")
    if not d:
        return
    path = host_dir / d.get("file", "")
    if not path.is_file():
        hc.problems.append(f"dump {d.get('file')} is missing")
        return
    try:
        last, sha, size, _ = backupset.dump_tail(path, d.get("compression", "none"))
    except UNREADABLE as exc:
        hc.problems.append(f"dump cannot be read: {exc}")
        return
    hc.size += size
    if (sha, size) != (d.get("sha256"), d.get("size")):
        hc.problems.append("dump sha256/size differ from the manifest")
    if last != backupset.completion_line(d.get("kind", "")):
        hc.problems.append(f"dump is incomplete (last line {last[:50]!r})")


def check_host(set_dir: Path, host: str, entry: dict) -> HostCheck:
    """Check one host's files in a set against its manifest (reads every byte once)."""
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
    _check_archive(hc, host_dir)
    _check_dump(hc, host_dir)
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


def verify_set(set_dir: Path, parallel: int = 4) -> SetCheck:
    """Check a whole set; never raises for a damaged set, it reports it."""
    try:
        manifest = _load_json(set_dir / backupset.MANIFEST)
    except (OSError, ValueError) as exc:
        return SetCheck(set_dir, {}, {}, [f"{set_dir}: not a backup set ({exc})"])
    sc = SetCheck(set_dir, manifest, {})
    if not manifest.get("complete") or set_dir.name.endswith(backupset.PARTIAL):
        sc.problems.append("the set is incomplete: its backup did not finish on every host")
    entries = {h: e for h, e in manifest.get("hosts", {}).items() if e.get("status") == "ok"}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        checks = pool.map(lambda item: check_host(set_dir, *item), entries.items())
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
                    "result": "ok" if h.ok else "BAD: " + "; ".join(h.problems)})
    return out
