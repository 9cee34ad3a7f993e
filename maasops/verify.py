"""``maasops verify``: check a backup set on the laptop, offline, against its manifests.

The set manifest is read once: its signature is checked over those bytes and the same
bytes are parsed; each host manifest is read once, hashed and parsed
(:func:`maasops.manifest.read_set`); a set directory holding a symbolic link is refused. Every
archive and dump is then read once, streaming: its sha256 and size must match the
host manifest and the set manifest's record, every archive member must match the
listing (bytes, mode, owner) and be one the layout lets a restore write
(:mod:`maasops.confine`), and every dump must end with PostgreSQL's completion
line: each part of the set checks its own files (:mod:`maasops.parts`, ``check``). A set is
complete only when it holds the deployment's database (or the caller says the database is
backed up elsewhere).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from maasops import backupset, compression, crypto, output, signing
from maasops import manifest as mf
from maasops.backupset import LocalFiles, SetFiles
from maasops.parts import config, database, images

SEALED = "encrypted: checksums only, --decrypt-key checks the contents"
# What a damaged gzip or tar stream raises while it is read.
UNREADABLE = (ValueError, tarfile.TarError, *compression.ERRORS)
PARTS = (config, images, database)  # each checks its own files of a host (maasops.parts)
NO_DATABASE = ("the set holds no database dump: a deployment cannot be restored from it (give "
               "--database-elsewhere if its database is backed up another way)")


@dataclass
class HostCheck:
    """One host of a set: its manifest and what is wrong with its files (nothing, when ok)."""

    host: str
    manifest: mf.HostManifest | None = None
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
    """A whole set: its records (None when they cannot be read), its hosts and set-wide problems."""

    set_dir: Path
    records: mf.SetRecords | None
    hosts: dict[str, HostCheck]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signer: str | None = None  # who signed it, by allowed_signers
    files: SetFiles | None = None  # where its archives and dumps are read from

    @property
    def ok(self) -> bool:
        """True when the set and every host in it are intact."""
        return not self.problems and all(h.ok for h in self.hosts.values())

    def problem(self) -> str | None:
        """Why this set must not be restored, in one line, or None."""
        bad = self.problems + [f"{h.host}: {'; '.join(h.problems)}" for h in self.hosts.values() if not h.ok]
        return "the backup set does not verify: " + " | ".join(bad) if bad else None


@dataclass(frozen=True)
class Reading:
    """How deep a check reads: decrypting with ``ids``; the files' contents, or only their sizes."""

    ids: list | None = None
    content: bool = True


def _read(hc: HostCheck, what: str, files: SetFiles, rel: str, entry, reader, how: Reading):
    """Run ``reader(src, compress)`` over a set file's plaintext and check the file's sha256/size.

    Returns the reader's result, or None when the file is missing, unreadable, encrypted with no
    identity given (then only the stored checksums are checked), or ``how.content`` is False (then
    only its size is).
    """
    size = files.size(rel)
    if size is None:
        hc.problems.append(f"{what} {rel.rsplit('/', 1)[-1]} is missing")
        return None
    if not how.content:
        return _read_size(hc, what, files, rel, size, entry, how)
    try:
        if not entry.encryption:
            with files.open(rel) as f:
                got = reader(f, entry.compression)
            stored = got[1:3]  # both readers return (result, sha256, size, ...)
        else:
            stored, got = (files.sha256(rel), size), None
            if how.ids is not None:
                with files.open(rel) as raw, crypto.decrypted(raw, how.ids, entry.file) as src:
                    got = reader(src, entry.compression)
                if got[1] != entry.plain_sha256:
                    hc.problems.append(f"{what}'s decrypted sha256 differs from the manifest")
            elif SEALED not in hc.notes:
                hc.notes.append(SEALED)
    except UNREADABLE as exc:
        hc.problems.append(f"{what} cannot be read: {exc}")
        return None
    hc.size += stored[1]
    if (stored[0], stored[1]) != (entry.sha256, entry.size):
        hc.problems.append(f"{what} sha256/size differ from the manifest")
        return None
    return got


def _read_size(hc: HostCheck, what: str, files: SetFiles, rel: str, size: int, entry, how: Reading) -> None:
    hc.size += size
    if size != entry.size:
        hc.problems.append(f"{what} size differs from the manifest")
    if entry.encryption and how.ids is None and SEALED not in hc.notes:
        hc.notes.append(SEALED)
    elif entry.encryption:  # the identity must open it: decrypt the first block
        try:
            with files.open(rel) as raw, crypto.decrypted(raw, how.ids, entry.file) as src:
                src.read(backupset.CHUNK)
        except UNREADABLE as exc:
            hc.problems.append(f"{what} cannot be read: {exc}")


def _check_records(hc: HostCheck, records: mf.SetRecords, entry: mf.HostEntry) -> None:
    """The set manifest's record of this host's files must be what its manifest was parsed from and what it says."""
    if entry.manifest_sha256 and records.host_sha256.get(hc.host) != entry.manifest_sha256:
        hc.problems.append("manifest.json was changed after the backup (sha256 differs from the set's record)")
    m = hc.manifest
    said = {s.file: s.sha256 for s in m.stored()}
    if entry.files and entry.files != said:
        hc.problems.append("the set manifest's checksums differ from the host manifest's")


def check_host(set_dir: Path, records: mf.SetRecords, host: str, how: Reading = Reading(),
               files: SetFiles | None = None) -> HostCheck:
    """Check one host's files in a set (in ``set_dir``, or read through ``files``) against its manifest.

    Reads every byte once (decrypting with ``how.ids``); with ``how.content`` False, only
    the records and the files' sizes are checked, in no time.
    """
    files = files or LocalFiles(set_dir)
    hc = HostCheck(host, records.hosts[host])
    _check_records(hc, records, records.set.hosts[host])

    def read(what: str, stored: mf.Stored, reader: Callable[[BinaryIO, str], Any]) -> Any:
        return _read(hc, what, files, f"{hc.host}/{stored.file}", stored, reader, how)
    for part in PARTS:
        hc.problems += part.check(hc.manifest, read)
    hc.files += len(hc.manifest.members())
    return hc


def _database_problem(records: mf.SetRecords, database_elsewhere: bool) -> str | None:
    db = records.set.database
    holder = records.hosts.get(db.dumped_by) if db.dumped_by else None
    if holder is not None and holder.dump is not None:
        return None
    return None if database_elsewhere else NO_DATABASE


@dataclass(frozen=True)
class Policy:
    """What a set must prove before it is trusted: whose signature, and whether it must hold the database."""

    allowed_signers: Path
    trust_unsigned: bool = False
    database_elsewhere: bool = False


def _signature(sc: SetCheck, raw: bytes, policy: Policy, records: mf.SetRecords | None) -> None:
    """The signature over ``raw``, the set manifest's bytes that ``records`` were parsed from."""
    formats = [records.set.format_version, *(m.format_version for m in records.hosts.values())] if records else [0]
    trust = signing.check(sc.set_dir, raw, policy.allowed_signers, policy.trust_unsigned, max(formats) == 1)
    sc.signer = trust.signer
    if trust.problem:
        sc.problems.append(trust.problem)
    if trust.warning:
        sc.notes.append(trust.warning)


def verify_set(set_dir: Path, policy: Policy, parallel: int = 4, ids: list | None = None,
               content: bool = True, files: SetFiles | None = None) -> SetCheck:
    """Check a whole set (decrypting with ``ids`` if it is encrypted); never raises for a damaged set.

    The manifests are in ``set_dir``; the archives and dumps too, or read through ``files``
    (a restic repository's). The signature is checked first (``policy``). ``content`` False
    checks everything but the files' bytes (see :func:`check_host`).
    """
    sc = SetCheck(set_dir, None, {}, files=files or LocalFiles(set_dir))
    try:
        raw = mf.read_manifest(set_dir)
    except mf.ManifestError as exc:
        sc.problems.append(f"not a backup set maasops can trust: {exc}")
        return sc
    try:
        records, unreadable = mf.read_set(set_dir, raw), None
    except mf.ManifestError as exc:
        records, unreadable = None, exc
    _signature(sc, raw, policy, records)
    if records is None:
        sc.problems.append(f"not a backup set maasops can trust: {unreadable}")
        return sc
    sc.records = records
    if records.set.format_version < mf.FORMAT_VERSION and not policy.trust_unsigned:
        sc.problems.append("the set was written before sets were signed (format 1): only --trust-unsigned "
                           "restores it")
    if not records.set.complete or set_dir.name.endswith(backupset.PARTIAL):
        sc.problems.append("the set is incomplete: its backup did not finish on every host")
    problem = _database_problem(records, policy.database_elsewhere)
    if problem:
        sc.problems.append(problem)
    elif records.set.database.elsewhere or not records.set.database.dumped_by:
        sc.notes.append("the set holds no database: it is backed up elsewhere (--database-elsewhere)")
    how = Reading(ids, content)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        sc.hosts = {hc.host: hc for hc in pool.map(lambda h: check_host(set_dir, records, h, how, sc.files),
                                                        records.hosts)}
    region_secrets = {m.secret_sha256() for m in records.hosts.values() if "region" in m.roles} - {None}
    if len(region_secrets) > 1:
        sc.problems.append("the regions in this set have different secrets")
    return sc


def rows(sc: SetCheck) -> list[dict]:
    """Table rows for a set check."""
    out = []
    for h in sorted(sc.hosts.values(), key=lambda h: h.host):
        m = h.manifest
        out.append({"host": h.host, "layout": m.layout, "version": m.maas_version, "roles": "+".join(m.roles),
                    "files": h.files, "dump": "yes" if m.dump else "-", "size": output.human_bytes(h.size),
                    "result": ("ok" if h.ok else "BAD: " + "; ".join(h.problems))
                    + "".join(f" ({n})" for n in h.notes)})
    return out
