"""Backup sets in a restic repository: how a set is laid out there, listed, read back and pushed.

A set ``<deployment>/<time>`` is a group of restic snapshots, all with the set's
time and the tags ``maasops``, ``deployment=``, ``set=``:

- one per archive, dump and images part, ``/<deployment>/<time>/<host>/<file>`` (restic 0.18.0, which cannot
  back up stdin under a directory, names it flat: ``/<deployment>+<time>+<host>+<file>``): the bytes
  exactly as the backup streamed them (``restic backup --stdin``), tagged
  ``host=``, ``kind=archive|dump|images`` and ``maas=`` (the host's MAAS version). The
  manifests' sha256 are of these bytes, so a set read back verifies as it did
  when it was made; a backup into a repository writes uncompressed tar and SQL,
  which restic's content-defined chunking deduplicates from one run to the next
  (restic compresses them itself);
- one of the manifests, written last: ``/<deployment>/<time>/manifests.tar``, a
  tar of ``manifest.json``, its signature and every host's ``manifest.json``, tagged
  ``kind=manifests``, ``state=complete|incomplete``, ``hosts=a+b`` and ``size=``;
  a verify that read the whole set back from the repository adds ``verified=``;
  ``reuse=host/time+...`` names the earlier sets whose images part a host reuses
  (:mod:`maasops.parts.images`: its image-storage had not changed), which the set's
  files then include.

Tags only list and select sets: nothing is trusted because of them. A set read
back is checked exactly as a local one (:mod:`maasops.verify`): its manifests are
written into a private directory (only regular files at the names a set has),
and its archives and dumps are streamed out with ``restic dump`` as they are read.
"""

from __future__ import annotations

import calendar
import io
import json
import os
import tarfile
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from maasops import backupset, signing, tarstream
from maasops import manifest as mf
from maasops import repo as restic
from maasops.parts import images
from maasops.plan import Send
from maasops.repo import Repo, RepoError

STAMP = mf.STAMP
KINDS = ("archive", "dump", "images", "manifests")
LATEST = "latest"
SET_FILES = (mf.MANIFEST, signing.SIGNATURE)  # beside the host directories
MANIFESTS = "manifests.tar"
FLAT = "+"  # joins a snapshot's name where restic cannot back up stdin under a directory (restic 0.18.0)


@dataclass(frozen=True)
class Snapshot:
    """One of maasops's snapshots: its id, the one path it holds, and its key=value tags."""

    id: str
    path: str
    tags: dict[str, str]

    @classmethod
    def parse(cls, data: object) -> Snapshot | None:
        """A snapshot from ``restic snapshots --json``; None when it is not one of maasops's."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        raw = [t for t in data.get("tags") or [] if isinstance(t, str)]
        if restic.TAG not in raw:
            return None
        tags = dict(t.split("=", 1) for t in raw if "=" in t)
        paths = [p for p in data.get("paths") or [] if isinstance(p, str)]
        return cls(data["id"], paths[0] if len(paths) == 1 else "", tags)


@dataclass
class RepoSet:
    """A set in the repository: its name, its manifests' snapshot (None: not finished) and its files'."""

    deployment: str
    stamp: str
    manifests: Snapshot | None = None
    files: dict[str, Snapshot] = field(default_factory=dict)  # "host/file" -> snapshot

    @property
    def name(self) -> str:
        """``deployment/time``, its directory in the repository."""
        return f"{self.deployment}/{self.stamp}"

    def tag(self, key: str) -> str:
        """A tag of the manifests' snapshot ('' when there is none)."""
        return self.manifests.tags.get(key, "") if self.manifests else ""

    @property
    def complete(self) -> bool:
        """The backup finished on every host (as its manifests' snapshot says)."""
        return self.tag("state") == "complete"

    @property
    def verified(self) -> str:
        """When a verify last read the whole set back from the repository ('' never)."""
        return self.tag("verified")

    def snapshot_ids(self) -> list[str]:
        """Every snapshot of the set."""
        return [s.id for s in ([self.manifests] if self.manifests else []) + list(self.files.values())]


def stamp_time(stamp: str) -> float:
    """The Unix time of a set's time stamp (``20250102T030405Z``)."""
    return float(calendar.timegm(time.strptime(stamp[:16], "%Y%m%dT%H%M%SZ")))


def catalog(repo: Repo) -> list[RepoSet]:
    """Every maasops set in the repository, oldest first (per deployment)."""
    sets: dict[tuple[str, str], RepoSet] = {}
    for data in restic.run_json(repo, "snapshots", "--tag", restic.TAG) or []:
        snap = Snapshot.parse(data)
        dep, stamp, kind = (snap.tags.get(k, "") for k in ("deployment", "set", "kind")) if snap else ("", "", "")
        if not (snap and mf.SAFE_NAME.match(dep) and STAMP.match(stamp) and kind in KINDS):
            continue
        rs = sets.setdefault((dep, stamp), RepoSet(dep, stamp))
        if kind == "manifests":
            rs.manifests = snap
        else:
            rel = _rel(snap.path, dep, stamp)
            if rel:
                rs.files[rel] = snap
    used = _resolve_reuse(sets)
    # A set kept only for the images later sets reuse (its own manifests were let go) is not a set any more.
    return [sets[k] for k in sorted(sets) if sets[k].manifests or not set(sets[k].snapshot_ids()) <= used]


def snapshot_name(deployment: str, stamp: str, rel: str) -> str:
    """The name a set's file gets in its snapshot: ``deployment/time/rel``; with a restic that cannot back up
    stdin under a directory (0.18.0), flat: ``deployment+time+host+file``."""
    return ("/" if restic.paths().stdin_dirs else FLAT).join([deployment, stamp, *rel.split("/")])


def _rel(path: str, dep: str, stamp: str) -> str:
    """``host/file`` from a snapshot's path in either naming ('' when it is not one of the set's)."""
    for sep in ("/", FLAT):
        prefix = f"/{dep}{sep}{stamp}{sep}"
        if path.startswith(prefix):
            return path[len(prefix):].replace(sep, "/")
    return ""


def _resolve_reuse(sets: dict[tuple[str, str], RepoSet]) -> set[str]:
    """Add to each set the images parts its ``reuse=`` tag names (when the repository still has them);
    the ids of the snapshots so reused."""
    used = set()
    for rs in sets.values():
        for ref in filter(None, rs.tag("reuse").split("+")):
            host, _, stamp = ref.partition("/")
            origin = sets.get((rs.deployment, stamp))
            found = [(rel, snap) for rel, snap in (origin.files.items() if origin else ())
                     if rel.startswith(f"{host}/{mf.IMAGES}")]
            if found and host and rs is not origin:
                rs.files[found[0][0]] = found[0][1]
                used.add(found[0][1].id)
    return used


def find(sets: list[RepoSet], ref: str, deployment: str | None = None) -> RepoSet:
    """The set ``ref`` names: ``latest``, ``TIME``, ``DEPLOYMENT/TIME`` or ``DEPLOYMENT/latest``.

    ``latest`` is the newest complete set. Without a deployment in ``ref`` (or given), the
    repository must hold one deployment only. RepoError says what the repository has instead.
    """
    dep, _, stamp = ref.rpartition("/")
    dep = dep or deployment
    deployments = sorted({s.deployment for s in sets})
    if not dep:
        if len(deployments) > 1:
            raise RepoError(f"the repository holds sets of {', '.join(deployments)}: say which, as "
                            f"--set DEPLOYMENT/{stamp} (or --deployment)")
        dep = deployments[0] if deployments else ""
    mine = [s for s in sets if s.deployment == dep and s.manifests]
    if stamp == LATEST:
        found = [s for s in mine if s.complete][-1:]
    else:
        found = [s for s in mine if s.stamp == stamp]
    if not found:
        have = ", ".join(s.stamp for s in mine[-5:]) or "no set"
        raise RepoError(f"the repository has no {'complete ' if stamp == LATEST else ''}set {dep or '?'}/{stamp} "
                        f"(it has {have}; maasops sets --repo lists them)")
    return found[0]


def _manifest_name(rel: str) -> str | None:
    """``rel`` when it names a manifest file of a set (``manifest.json``, its signature, ``host/manifest.json``)."""
    parts = rel.split("/")
    if rel in SET_FILES:
        return rel
    if len(parts) != 2 or parts[1] != mf.MANIFEST:
        return None
    try:
        mf.safe_name(parts[0], "host name")
    except mf.ManifestError:
        return None
    return rel


def materialize(repo: Repo, rs: RepoSet, dest: Path) -> Path:
    """Write the set's manifests (and signature) into ``dest/<deployment>/<time>`` (0700, files 0600).

    Only regular files at the names a set has are written (created afresh, following no link), each at most
    :data:`maasops.manifest.MAX_MANIFEST` bytes; anything else in the snapshot is ignored. The set is then read
    as a local one is (:func:`maasops.manifest.read_set`: once, no link followed).
    """
    if not rs.manifests:
        raise RepoError(f"{rs.name}: its backup never finished (no manifests in the repository)")
    set_dir = backupset.private_dir(dest / rs.deployment / rs.stamp)
    for stale in [set_dir / f for f in SET_FILES] + list(set_dir.glob(f"*/{mf.MANIFEST}")):
        stale.unlink(missing_ok=True)
    if _rel(rs.manifests.path, rs.deployment, rs.stamp) != MANIFESTS:
        raise RepoError(f"{rs.name}: its manifests snapshot holds {rs.manifests.path[:120]!r}, not {MANIFESTS}")
    with restic.dump(repo, rs.manifests.id, rs.manifests.path) as src:
        tar = tarstream.TarReader(src)  # the one strict parser: no silent stop, no name twice
        try:
            for member in tar:
                rel = _manifest_name(member.name)
                if rel is None or member.kind != "file" or member.size > mf.MAX_MANIFEST:
                    continue
                path = set_dir / rel
                backupset.private_dir(path.parent)
                tmp = path.with_name(path.name + ".tmp")
                tmp.unlink(missing_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                with os.fdopen(os.open(tmp, flags, 0o600), "wb") as out:
                    out.write(tar.read(member.size))
                tmp.rename(path)
        except tarstream.Malformed as exc:
            raise RepoError(f"{rs.name}: its manifests snapshot is not a tar maasops reads: {exc}") from None
    return set_dir


def reusable_images(repo: Repo, deployment: str) -> dict[str, mf.Images]:
    """Per host, the images part of the deployment's newest complete set, as a new set would reuse it (its
    ``origin`` the set that holds the bytes); none when that set has none, or the repository lost them."""
    done = [s for s in catalog(repo) if s.deployment == deployment and s.complete]
    if not done:
        return {}
    rs = done[-1]
    with tempfile.TemporaryDirectory(prefix="maasops-previous-") as tmp:
        try:
            records = mf.read_set(materialize(repo, rs, Path(tmp)))
        except mf.ManifestError:
            return {}
    out = {}
    for host, m in records.hosts.items():
        if m.images and f"{host}/{m.images.file}" in rs.files:
            out[host] = replace(m.images, origin=m.images.origin or rs.stamp)
    return out


def file_tags(deployment: str, stamp: str, host: str, kind: str, maas_version: str) -> dict[str, str]:
    """The tags of one archive's, dump's or images part's snapshot."""
    return {"deployment": deployment, "set": stamp, "host": host, "kind": kind, "maas": maas_version}


def file_sink(repo: Repo, deployment: str, stamp: str, host: str, name: str,
              maas_version: str) -> restic.SnapshotSink | WhenWritten:
    """A sink that streams one host file of a set into its own snapshot (an images part: only when a byte
    comes; an unchanged image-storage sends none, and makes no snapshot)."""
    kind = "archive" if name.startswith(mf.ARCHIVE) else "images" if name.startswith(mf.IMAGES) else "dump"

    def sink() -> restic.SnapshotSink:
        return restic.SnapshotSink(repo, snapshot_name(deployment, stamp, f"{host}/{name}"),
                                   file_tags(deployment, stamp, host, kind, maas_version), deployment,
                                   stamp_time(stamp))
    return WhenWritten(sink) if kind == "images" else sink()


class WhenWritten:
    """A sink made at its first byte: closed with none written, it made nothing (the sha256 and size of b'')."""

    def __init__(self, make):
        self._make, self._sink = make, None

    def write(self, data: bytes) -> int:
        """Hand bytes to the sink, made now if this is the first."""
        if self._sink is None:
            self._sink = self._make()
        return self._sink.write(data)

    def close(self) -> tuple[str, int]:
        """End of the file: the sink's checksums, or those of nothing."""
        return self._sink.close() if self._sink else (images.EMPTY, 0)

    def abort(self) -> None:
        """Stop the sink, if one was made."""
        if self._sink:
            self._sink.abort()


def _reused(set_dir: Path, hosts: list[str]) -> str:
    """``host/time+...``: the hosts whose manifest reuses an earlier set's images part, and that set."""
    refs = []
    for host in hosts:
        try:
            m = mf.parse_host(mf.load_json(set_dir / host / mf.MANIFEST), host, f"{host}/{mf.MANIFEST}")
        except mf.ManifestError:
            continue
        if m.images and m.images.origin:
            refs.append(f"{host}/{m.images.origin}")
    return "+".join(refs)


def push_manifests(repo: Repo, set_dir: Path, deployment: str, stamp: str, complete: bool, size: int) -> str:
    """Store the set's manifests and signature (read from ``set_dir``) as the set's last snapshot; its id."""
    hosts = sorted(p.parent.name for p in set_dir.glob(f"*/{mf.MANIFEST}") if _manifest_name(
        f"{p.parent.name}/{mf.MANIFEST}"))
    tags = {"deployment": deployment, "set": stamp, "kind": "manifests",
            "state": "complete" if complete else "incomplete", "hosts": "+".join(hosts), "size": str(size)}
    if reused := _reused(set_dir, hosts):
        tags["reuse"] = reused
    sink = restic.SnapshotSink(repo, snapshot_name(deployment, stamp, MANIFESTS), tags, deployment, stamp_time(stamp))
    try:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for rel in [f for f in SET_FILES if (set_dir / f).is_file()] + [f"{h}/{mf.MANIFEST}" for h in hosts]:
                data = backupset.read_small(set_dir, rel, mf.MAX_MANIFEST)
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
                tar.addfile(info, io.BytesIO(data))
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return sink.summary.get("snapshot_id", "")


class RepoFiles:
    """A set's archives and dumps in the repository, streamed out with ``restic dump``."""

    def __init__(self, repo: Repo, rs: RepoSet):
        self.repo, self.set = repo, rs
        self._sizes: dict[str, int | None] = {}

    def __str__(self) -> str:
        return f"restic {self.repo} {self.set.name}"

    def size(self, rel: str) -> int | None:
        """The file's size as the repository records it (None when the set has no such file)."""
        if rel not in self._sizes:
            snap = self.set.files.get(rel)
            nodes = restic.run(self.repo, "ls", "--json", snap.id).splitlines() if snap else []
            sizes = [n.get("size") for n in map(_json, nodes)
                     if snap and n.get("path") == snap.path and n.get("type") == "file"]
            self._sizes[rel] = sizes[0] if sizes and isinstance(sizes[0], int) else None
        return self._sizes[rel]

    def open(self, rel: str) -> AbstractContextManager[BinaryIO]:
        """The file's bytes, streamed out of the repository."""
        snap = self.set.files.get(rel)
        if snap is None:
            raise RepoError(f"{self.set.name}/{rel} is not in the repository")
        return restic.dump(self.repo, snap.id, snap.path)  # an images part reused: an earlier set's path

    def sha256(self, rel: str) -> str:
        """The file's sha256, read from the repository."""
        with self.open(rel) as src:
            reader = backupset.HashingReader(src)
            while reader.read(backupset.CHUNK):
                pass
            return reader.digest.hexdigest()

    def send(self, rel: str, member: str | None = None, compress: str = "none", identity: str | None = None) -> Send:
        """The file as a restore step's stdin, streamed from the repository as it uploads."""
        return Send(rel, member, compress, identity, files=self)


def _json(line: str) -> dict:
    try:
        data = json.loads(line)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _push_file(repo: Repo, set_dir: Path, deployment: str, stamp: str, host: str, stored: mf.Stored,
               maas_version: str) -> int:
    """Stream one archive or dump of a local set into its snapshot, checked against its manifest as it goes."""
    sink = file_sink(repo, deployment, stamp, host, stored.file, maas_version)
    try:
        with backupset.open_in(set_dir, f"{host}/{stored.file}") as src:
            while block := src.read(backupset.CHUNK):
                sink.write(block)
        if sink.written != (stored.sha256, stored.size):
            raise RepoError(f"{host}/{stored.file} differs from its manifest: the set is damaged (maasops verify "
                            "names what); nothing of it is kept in the repository")
        sink.close()
    except BaseException:
        sink.abort()
        raise
    return stored.size


def _forget_unfinished(repo: Repo, deployment: str, stamp: str) -> None:
    """Forget the files a push stored before it failed (a set without manifests); never a finished set's."""
    try:
        sets = catalog(repo)
        others = {i for s in sets if (s.deployment, s.stamp) != (deployment, stamp) for i in s.snapshot_ids()}
        ids = [i for s in sets if (s.deployment, s.stamp) == (deployment, stamp) and not s.manifests
               for i in s.snapshot_ids() if i not in others]
        if ids:
            restic.run(repo, "forget", *ids)
    except RepoError:  # already failing: the first error is the one to report; prune removes them later
        pass


def push_set(repo: Repo, set_dir: Path) -> tuple[RepoSet | None, str]:
    """Store a finished local set in the repository, its bytes as they are (so its signature still holds).

    Returns the set as the repository now has it and what was done; RepoError (nothing
    stored as a set) when it cannot be read or a file differs from its manifest.
    """
    if set_dir.name.endswith(backupset.PARTIAL) or not STAMP.match(set_dir.name):
        raise RepoError(f"{set_dir}: not a finished backup set (backups/<deployment>/<UTC time>)")
    try:
        records = mf.read_set(set_dir)
    except mf.ManifestError as exc:
        raise RepoError(f"{set_dir}: not a backup set maasops can read: {exc}") from None
    dep, stamp = records.set.deployment, set_dir.name
    known = [s for s in catalog(repo) if (s.deployment, s.stamp) == (dep, stamp) and s.manifests]
    if known:
        return known[0], "already in the repository: nothing stored"
    size = 0
    try:
        for host, m in sorted(records.hosts.items()):
            for stored in filter(None, (m.archive, m.dump)):
                size += _push_file(repo, set_dir, dep, stamp, host, stored, m.maas_version)
        push_manifests(repo, set_dir, dep, stamp, records.set.complete, size)
    except BaseException:
        _forget_unfinished(repo, dep, stamp)
        raise
    pushed = [s for s in catalog(repo) if (s.deployment, s.stamp) == (dep, stamp)]
    return (pushed[0] if pushed else None), "stored"
