"""The backup set's records, typed: host manifests, the set manifest (with the backup's options), a restore's
record, and the one reader that validates them.

A set is hostile input until proven otherwise: whoever can write to the
laptop's backups directory can write these files. :func:`read_set` is the single
place a set's manifests are read: it refuses a format it does not know, a field
of the wrong type, a host or file name that would leave the set's directory, a
database name that is no identifier, trees and excludes that are not what the
layout table gives for that MAAS (rebased for the snap revision), and a listing
whose paths leave those trees. Nothing downstream reads a manifest's JSON itself.

Format 2 adds ``format_version``, each host's file checksums in the set manifest
(so a signature over the set manifest covers every byte) and the set's
``database`` record. Format 1 (no ``format_version``, sets written before
signing) is read too; such a set is unsigned, which the caller must allow.
Format 3 is that of a host manifest with an images part (a repository set,
:mod:`maasops.parts.images`): a maasops that does not know the part refuses the set,
never restores it without its images.

A restore's record (``restore-<run>.json``, :class:`RestoreRecord`) is written and read here, not in
:mod:`maasops.restore`: it lives in the set's directory beside the manifests, so whoever can change them can
change it, and it is read the same way (once, following no link, every field typed and checked).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from maasops import backupset, compression, layouts
from maasops.hostpaths import RUN_ID
from maasops.probe import DatabaseFacts, Space

FORMAT_VERSION = 2
IMAGES_FORMAT = 3  # a host manifest with an images part
KNOWN_FORMATS = (1, 2, IMAGES_FORMAT)
MANIFEST = "manifest.json"
ARCHIVE = "config.tar"
DUMP = "maasdb.sql"
DUMP_DIRECTORY = "maasdb.tar"  # a directory-format dump (maasops.parts.database), as a tar
IMAGES = "images.tar"  # image-storage as its own part (a backup into a repository: maasops.parts.images)
ENCRYPTED = ".age"
DIRECTORY_DUMP_KINDS = ("pg_dump-Fd", "roles+pg_dump-Fd")  # PostgreSQL's directory format (maasops.parts.database)
DUMP_KINDS = ("pg_dump", "pg_dumpall", "roles+pg_dump", *DIRECTORY_DUMP_KINDS)
ROLE_DUMP_KINDS = ("pg_dumpall", "roles+pg_dump", "roles+pg_dump-Fd")  # dumps that set the server's roles
DUMP_HOW = ("local", "network", "maas-test-db")
MEMBER_TYPES = ("file", "dir", "symlink", "hardlink", "other")
ROLES = ("region", "rack")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:@-]{0,127}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MODE = re.compile(r"^0?[0-7]{3,4}$")
STAMP = re.compile(r"^\d{8}T\d{6}Z(-\d{1,4})?$")  # a set's directory name: its UTC time
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
MAX_MANIFEST = 256 * 1024 * 1024  # a listing of millions of files still fits; a bigger file is not a manifest


class ManifestError(ValueError):
    """A manifest that cannot be trusted or understood; the message names the file and the field."""


def safe_name(name: object, what: str) -> str:
    """``name`` when it can be one path component (a host or deployment name), else ManifestError."""
    if not isinstance(name, str) or not SAFE_NAME.match(name) or name in (".", ".."):
        raise ManifestError(f"{what} {str(name)[:40]!r} is not a safe name (letters, digits and ._:@- only)")
    return name


@dataclass(frozen=True)
class Member:
    """One archive member as the backup listed it."""

    path: str
    type: str
    mode: str
    uid: int
    gid: int
    user: str
    group: str
    size: int | None = None
    sha256: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Stored:
    """A file of the set as stored: compressed (and maybe encrypted), with the checksums of both forms."""

    file: str
    compression: str
    size: int
    sha256: str
    encryption: str | None
    plain_sha256: str | None  # of the bytes before encryption (None when not encrypted)


@dataclass(frozen=True)
class Archive(Stored):
    """A host's config archive."""

    trees: tuple[str, ...]  # layout paths
    actual_trees: tuple[str, ...]  # as on the host (snap revision)
    excluded: tuple[str, ...]  # as on the host
    files: tuple[Member, ...]


@dataclass(frozen=True)
class Images(Stored):
    """A host's image-storage, archived apart from its config (a backup into a repository: maasops.parts.images).

    ``origin`` is the set whose snapshot holds the bytes when this set reuses them (the
    host's image-storage had not changed: same ``fingerprint``), None when this set sent them.
    """

    trees: tuple[str, ...]  # layout paths
    actual_trees: tuple[str, ...]  # as on the host (snap revision)
    files: tuple[Member, ...]
    fingerprint: str  # sha256 of the trees' listing (maasops.parts.images.fingerprint), taken with the units stopped
    origin: str | None = None


@dataclass(frozen=True)
class Dump(Stored):
    """A database dump."""

    kind: str
    database: str
    how: str  # local | network | maas-test-db
    last_line: str
    uncompressed_size: int


@dataclass(frozen=True)
class Downtime:
    """When a backup stopped and started the host's units."""

    units: tuple[str, ...]
    stopped_at: float
    started_at: float
    seconds: float


@dataclass(frozen=True)
class HostManifest:
    """What one host's backup holds and the facts of the host it came from."""

    host: str
    address: str
    install: str
    maas_version: str
    layout: str
    roles: tuple[str, ...]
    snap_revision: str | None
    snap_data: str | None
    snap_mode: str | None
    maas_url: str | None
    database: DatabaseFacts | None
    vault: bool
    notes: tuple[str, ...]
    unit_states: dict[str, str]
    archive: Archive
    dump: Dump | None = None
    images: Images | None = None
    other_db_sessions: str | None = None
    downtime: Downtime | None = None
    tool: str = "maasops"
    tool_version: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def lay(self) -> layouts.Layout:
        """The layout of the MAAS this manifest describes."""
        return layouts.layout_for(self.install, layouts.parse_version(self.maas_version))

    def on_host(self, path: str) -> str:
        """A layout path as it was on the backed-up host."""
        return layouts.on_host(path, self.snap_data)

    def secret_sha256(self) -> str | None:
        """sha256 of the host's MAAS secret file as archived, or None when it was not archived."""
        path = self.on_host(self.lay.secret)
        return next((m.sha256 for m in self.archive.files if m.path == path), None)

    def members(self) -> tuple[Member, ...]:
        """Every archived member: the config archive's and the images part's."""
        return self.archive.files + (self.images.files if self.images else ())

    def stored(self) -> list[Stored]:
        """Every file of this host in the set: archive, dump, images."""
        return [s for s in (self.archive, self.dump, self.images) if s is not None]

    def to_json(self) -> dict:
        """The manifest as written to disk (sections this host has none of are left out)."""
        data = {k: v for k, v in asdict(self).items() if not (v is None and k in OPTIONAL)}
        version = data.pop("format_version")
        return {"format_version": max(version, IMAGES_FORMAT) if self.images else version, **data}


OPTIONAL = ("dump", "images", "downtime", "other_db_sessions")


@dataclass(frozen=True)
class HostEntry:
    """A host's line in the set manifest."""

    status: str
    error: str = ""
    manifest_sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256 as stored


@dataclass(frozen=True)
class DatabaseRecord:
    """Where the deployment's database is in this set: dumped by a host, or backed up elsewhere."""

    dumped_by: str | None
    elsewhere: bool = False


@dataclass(frozen=True)
class OperatorLogin:
    """The database role and password file the operator gave a backup (where regiond.conf names none)."""

    user: str
    password_file: str  # a path on the laptop that ran the backup; the password itself is never recorded


@dataclass(frozen=True)
class SetOptions:
    """What the operator chose for the backup that made the set (:class:`maasops.backup_plan.BackupOptions`, field
    for field). A field the maasops that wrote an older set did not record reads as its default: False, or None."""

    stop_postgresql: bool = False
    exclude_images: bool = False
    db_only_maas: bool = False
    allow_vault: bool = False
    compress: str | None = None  # a codec name, or auto
    encrypt_to: str | None = None
    database_name: str | None = None
    credentials: OperatorLogin | None = None
    database_elsewhere: bool = False
    dump_format: str | None = None  # auto | plain | directory
    max_stream_gib: int | None = None


@dataclass(frozen=True)
class SetManifest:
    """The whole set: when, which deployment, each host and the database."""

    deployment: str
    created: str
    complete: bool
    options: SetOptions
    dump_owners: dict[str, str]
    database: DatabaseRecord
    hosts: dict[str, HostEntry]
    tool: str = "maasops"
    tool_version: str = ""
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict:
        """The manifest as written to disk."""
        return {"format_version": self.format_version, **{k: v for k, v in asdict(self).items()
                                                          if k != "format_version"}}


# --- reading ----------------------------------------------------------------------------------------------------


class _Obj:
    """Typed access to one JSON object, every error naming where it is."""

    def __init__(self, data: object, where: str):
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: not a JSON object")
        self.data, self.where = data, where

    def _get(self, key: str, kinds: tuple[type, ...], optional: bool):
        if key not in self.data or self.data[key] is None:
            if optional:
                return None
            raise ManifestError(f"{self.where}: {key} is missing")
        value = self.data[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ManifestError(f"{self.where}: {key} is a {type(value).__name__}, not a {kinds[0].__name__}")
        return value

    def str(self, key: str, optional: bool = False) -> str | None:
        return self._get(key, (str,), optional)

    def int(self, key: str, optional: bool = False) -> int | None:
        value = self._get(key, (int,), optional)
        if value is not None and value < 0:
            raise ManifestError(f"{self.where}: {key} is negative")
        return value

    def num(self, key: str, optional: bool = False) -> float | None:
        value = self._get(key, (int, float), optional)
        return None if value is None else float(value)

    def bool(self, key: str) -> bool:
        return bool(self._get(key, (bool,), True))

    def strs(self, key: str) -> tuple[str, ...]:
        items = self._get(key, (list,), True) or []
        if not all(isinstance(i, str) for i in items):
            raise ManifestError(f"{self.where}: {key} must be a list of strings")
        return tuple(items)

    def obj(self, key: str, optional: bool = False) -> _Obj | None:
        value = self._get(key, (dict,), optional)
        return None if value is None else _Obj(value, f"{self.where}: {key}")

    def str_map(self, key: str) -> dict[str, str]:
        value = self._get(key, (dict,), True) or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ManifestError(f"{self.where}: {key} must map strings to strings")
        return dict(value)

    def sha(self, key: str, optional: bool = False) -> str | None:
        value = self.str(key, optional)
        if value is not None and not SHA256.match(value):
            raise ManifestError(f"{self.where}: {key} is not a sha256")
        return value


def _format(o: _Obj) -> int:
    version = o.int("format_version", optional=True) or 1
    if version not in KNOWN_FORMATS:
        raise ManifestError(f"{o.where}: format_version {version} is not one this maasops reads "
                            f"({', '.join(map(str, KNOWN_FORMATS))}): use a newer maasops")
    return version


def _stored(o: _Obj, base: str) -> dict:
    comp = o.str("compression")
    try:
        codec = compression.codec(comp)
    except ValueError as exc:
        raise ManifestError(f"{o.where}: {exc}") from None
    encryption = o.str("encryption", optional=True)
    if encryption not in (None, "age"):
        raise ManifestError(f"{o.where}: unknown encryption {encryption!r}")
    expected = base + codec.suffix + (ENCRYPTED if encryption else "")
    if o.str("file") != expected:
        raise ManifestError(f"{o.where}: file is {o.str('file')[:60]!r}, must be {expected!r}")
    return {"file": expected, "compression": comp, "size": o.int("size"), "sha256": o.sha("sha256"),
            "encryption": encryption, "plain_sha256": o.sha("plain_sha256", optional=not encryption)}


def _member(data: object, where: str, roots: tuple[str, ...]) -> Member:
    o = _Obj(data, where)
    path = o.str("path")
    if not path.startswith("/") or "\0" in path or any(p in ("..", ".") for p in path.split("/")[1:]):
        raise ManifestError(f"{where}: path {path[:80]!r} is not a clean absolute path")
    if not within(path, roots):
        raise ManifestError(f"{where}: {path[:80]} is outside the archived trees")
    kind = o.str("type")
    mode = o.str("mode")
    if kind not in MEMBER_TYPES or not MODE.match(mode):
        raise ManifestError(f"{where}: type {kind!r} or mode {mode!r} is not one a listing has")
    return Member(path, kind, mode, o.int("uid"), o.int("gid"), o.str("user"), o.str("group"),
                  o.int("size", optional=True), o.sha("sha256", optional=kind != "file"),
                  o.str("link", optional=kind not in ("symlink", "hardlink")))


def within(path: str, roots: tuple[str, ...]) -> bool:
    """True when ``path`` is one of ``roots`` or below one of them."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _archive(o: _Obj, lay: layouts.Layout, roles: set[str], snap_data: str | None) -> Archive:
    stored = _stored(o, ARCHIVE)
    trees = o.strs("trees")
    allowed = lay.archived_trees(roles)
    if not trees or not set(trees) <= set(allowed):
        raise ManifestError(f"{o.where}: trees {list(trees)} are not {lay.name} trees for a {'+'.join(roles)}")
    actual = tuple(layouts.on_host(t, snap_data) for t in trees)
    if o.strs("actual_trees") != actual:
        raise ManifestError(f"{o.where}: actual_trees are not the trees on the host it names")
    always = {layouts.on_host(p, snap_data) for p in lay.cache_excludes}
    excluded = o.strs("excluded")
    if not always <= set(excluded) <= always | {layouts.on_host(p, snap_data) for p in lay.image_dirs}:
        raise ManifestError(f"{o.where}: excluded {list(excluded)} is not what {lay.name} leaves out")
    items = o._get("files", (list,), False)
    files = tuple(_member(m, f"{o.where}: files[{i}]", actual) for i, m in enumerate(items))
    return Archive(**stored, trees=trees, actual_trees=actual, excluded=excluded, files=files)


def _images(o: _Obj, lay: layouts.Layout, archive: Archive, snap_data: str | None) -> Images:
    stored = _stored(o, IMAGES)
    trees = o.strs("trees")
    if not trees or not set(trees) <= set(lay.image_dirs):
        raise ManifestError(f"{o.where}: trees {list(trees)} are not {lay.name}'s image-storage")
    actual = tuple(layouts.on_host(t, snap_data) for t in trees)
    if o.strs("actual_trees") != actual or set(actual) & set(archive.excluded):
        raise ManifestError(f"{o.where}: actual_trees are not the image-storage on the host it names, or the "
                            "archive leaves them out too")
    items = o._get("files", (list,), False)
    files = tuple(_member(m, f"{o.where}: files[{i}]", actual) for i, m in enumerate(items))
    origin = o.str("origin", optional=True)
    if origin is not None and not STAMP.match(origin):
        raise ManifestError(f"{o.where}: origin {origin[:40]!r} is not a set's time")
    return Images(**stored, trees=trees, actual_trees=actual, files=files, fingerprint=o.sha("fingerprint"),
                  origin=origin)


def dump_file(kind: str) -> str:
    """What a dump of ``kind`` is called in a set, before its codec's and encryption's suffixes."""
    return DUMP_DIRECTORY if kind in DIRECTORY_DUMP_KINDS else DUMP


def _dump(o: _Obj) -> Dump:
    kind, how, database = o.str("kind"), o.str("how", optional=True) or "local", o.str("database")
    if kind not in DUMP_KINDS or how not in DUMP_HOW or (kind in DIRECTORY_DUMP_KINDS and how != "local"):
        raise ManifestError(f"{o.where}: a dump of kind {kind!r} taken {how!r} is not one maasops makes")
    stored = _stored(o, dump_file(kind))
    if not database or len(database.encode()) > MAX_IDENTIFIER or "\0" in database:
        raise ManifestError(f"{o.where}: database {database[:70]!r} is not a PostgreSQL database name")
    return Dump(**stored, kind=kind, database=database, how=how, last_line=o.str("last_line"),
                uncompressed_size=o.int("uncompressed_size"))


def parse_host(data: object, host: str, where: str) -> HostManifest:
    """A host manifest from its JSON, validated against the layout table (ManifestError otherwise)."""
    o = _Obj(data, where)
    version = _format(o)
    if o.str("host") != host:
        raise ManifestError(f"{where}: says host {o.str('host')[:40]!r}, but is in {host}/")
    install, maas_version = o.str("install"), o.str("maas_version")
    try:
        lay = layouts.layout_for(install, layouts.parse_version(maas_version))
    except (ValueError, layouts.UnknownLayout) as exc:
        raise ManifestError(f"{where}: names no known MAAS layout: {exc}") from None
    if o.str("layout") != lay.name:
        raise ManifestError(f"{where}: says layout {o.str('layout')}, MAAS {maas_version} is {lay.name}")
    roles = o.strs("roles")
    if not roles or not set(roles) <= set(ROLES):
        raise ManifestError(f"{where}: roles {list(roles)} are not region and/or rack")
    snap_data = o.str("snap_data", optional=True)
    if (install == "snap") != bool(snap_data) or (snap_data and not layouts.SNAP_REVISION_DIR.match(snap_data)):
        raise ManifestError(f"{where}: snap_data {str(snap_data)[:60]!r} is not a snap revision directory")
    dump = o.obj("dump", optional=True)
    images = o.obj("images", optional=True)
    if images is not None and version < IMAGES_FORMAT:
        raise ManifestError(f"{where}: an images part in a format {version} manifest (format {IMAGES_FORMAT} has it)")
    downtime = o.obj("downtime", optional=True)
    db = o.obj("database", optional=True)
    archive = _archive(o.obj("archive"), lay, set(roles), snap_data)
    return HostManifest(
        host=host, address=o.str("address", optional=True) or host, install=install, maas_version=maas_version,
        layout=lay.name, roles=roles, snap_revision=o.str("snap_revision", optional=True), snap_data=snap_data,
        snap_mode=o.str("snap_mode", optional=True), maas_url=o.str("maas_url", optional=True),
        database=host_database(db.data, db.where) if db else None,
        vault=o.bool("vault"), notes=o.strs("notes"), unit_states=o.str_map("unit_states"),
        archive=archive, dump=_dump(dump) if dump else None,
        images=_images(images, lay, archive, snap_data) if images else None,
        other_db_sessions=o.str("other_db_sessions", optional=True),
        downtime=Downtime(downtime.strs("units"), downtime.num("stopped_at"), downtime.num("started_at"),
                          downtime.num("seconds")) if downtime else None,
        tool=o.str("tool", optional=True) or "maasops", tool_version=o.str("tool_version", optional=True) or "",
        format_version=version)


def host_database(data: object, where: str) -> DatabaseFacts:
    """A host manifest's ``database`` record: the backup's probe facts (:class:`maasops.probe.DatabaseFacts`, the one
    type of where a region's database is), as the backup wrote them, validated: every field of its type; the ones an
    older maasops did not write (its size, data directory and space, ``listen_addresses`` and pg_hba.conf rules)
    left at their defaults. Set data: shown quoted, never run."""
    o = _Obj(data, where)
    space = o.obj("data_space", optional=True)
    return DatabaseFacts(
        location=o.str("location"), host=o.str("host"), port=o.int("port"), name=o.str("name"), user=o.str("user"),
        dedicated=o._get("dedicated", (bool,), True), size=o.int("size", optional=True),
        data_directory=o.str("data_directory", optional=True),
        data_space=Space(space.int("free"), space.str("mount")) if space else None,
        listen_addresses=o.str("listen_addresses", optional=True),
        hba=o.strs("hba") if o.data.get("hba") is not None else None)


def _set_options(o: _Obj | None) -> SetOptions:
    """The backup's options as the set recorded them (none recorded: every default); keys this maasops does not
    know are left unread, as in every record."""
    if o is None:
        return SetOptions()
    login = o.obj("credentials", optional=True)
    return SetOptions(
        stop_postgresql=o.bool("stop_postgresql"), exclude_images=o.bool("exclude_images"),
        db_only_maas=o.bool("db_only_maas"), allow_vault=o.bool("allow_vault"),
        compress=o.str("compress", optional=True), encrypt_to=o.str("encrypt_to", optional=True),
        database_name=o.str("database_name", optional=True),
        credentials=OperatorLogin(login.str("user"), login.str("password_file")) if login else None,
        database_elsewhere=o.bool("database_elsewhere"), dump_format=o.str("dump_format", optional=True),
        max_stream_gib=o.int("max_stream_gib", optional=True))


def parse_set(data: object, where: str) -> SetManifest:
    """A set manifest from its JSON, validated (ManifestError otherwise)."""
    o = _Obj(data, where)
    version = _format(o)
    hosts_obj = o.obj("hosts")
    hosts = {}
    for name, entry in hosts_obj.data.items():
        e = _Obj(entry, f"{where}: hosts.{safe_name(name, 'host name')}")
        files = e.str_map("files")
        for f, digest in files.items():
            if "/" in f or f.startswith(".") or not SHA256.match(digest):
                raise ManifestError(f"{e.where}: files has {f[:40]!r}: not a file name with a sha256")
        entry = HostEntry(e.str("status"), e.str("error", optional=True) or "", e.sha("manifest_sha256", optional=True),
                          files)
        if version >= 2 and entry.status == "ok" and not (entry.manifest_sha256 and entry.files):
            raise ManifestError(f"{e.where}: an ok host without the checksums of its manifest and files")
        hosts[name] = entry
    owners = o.str_map("dump_owners")
    for host, how in owners.items():
        if host not in hosts or how not in DUMP_HOW:
            raise ManifestError(f"{where}: dump_owners names {host[:40]!r} ({how[:20]!r}): not a host of this set")
    db = o.obj("database", optional=True)
    if db is not None:
        record = DatabaseRecord(db.str("dumped_by", optional=True), db.bool("elsewhere"))
        if record.dumped_by is not None and record.dumped_by not in hosts:
            raise ManifestError(f"{where}: database.dumped_by {record.dumped_by[:40]!r} is not a host of this set")
    else:  # format 1: the dump owners say it
        record = DatabaseRecord(next(iter(sorted(owners)), None))
    return SetManifest(
        deployment=safe_name(o.str("deployment"), "deployment"), created=o.str("created"),
        complete=o.bool("complete"), options=_set_options(o.obj("options", optional=True)),
        dump_owners=owners, database=record, hosts=hosts, tool=o.str("tool", optional=True) or "maasops",
        tool_version=o.str("tool_version", optional=True) or "", format_version=version)


def _json(data: bytes, where: str) -> object:
    try:
        return json.loads(data.decode())
    except ValueError as exc:
        raise ManifestError(f"{where}: cannot be read: {exc}") from None


def _read(set_dir: Path, rel: str) -> bytes:
    try:
        return backupset.read_small(set_dir, rel, MAX_MANIFEST)
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{rel}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None


def load_json(path: Path) -> object:
    """A JSON file's data, read once and following no link (ManifestError naming the file when it cannot be read,
    is too big or is no JSON)."""
    return _json(_read(path.parent, path.name), f"{path.parent.name}/{path.name}")


def refuse_links(set_dir: Path) -> None:
    """ManifestError when ``set_dir`` is, or holds anywhere, a symbolic link (or anything but files and
    directories): a set maasops wrote holds none, and a link would make what is checked and what is used differ."""
    if set_dir.is_symlink():
        raise ManifestError(f"{set_dir} is a symbolic link: give the set's own directory")
    pending = [set_dir]
    while pending:
        here = pending.pop()
        try:
            entries = list(os.scandir(here))
        except OSError as exc:
            raise ManifestError(f"{here.name}: cannot be read: {exc.strerror}") from None
        for e in entries:
            rel = Path(e.path).relative_to(set_dir)
            if e.is_symlink():
                raise ManifestError(f"{rel} is a symbolic link: a backup set holds none (the set was changed "
                                    "after the backup: do not restore from it)")
            if e.is_dir(follow_symlinks=False):
                pending.append(Path(e.path))
            elif not e.is_file(follow_symlinks=False):
                raise ManifestError(f"{rel} is not a regular file or directory: a backup set holds none")


def read_manifest(set_dir: Path) -> bytes:
    """The set manifest's bytes, read once (after :func:`refuse_links`): what the signature is checked over and
    :func:`read_set` parses."""
    refuse_links(set_dir)
    return _read(set_dir, MANIFEST)


@dataclass
class SetRecords:
    """A set's manifests as read and validated: the set's, each ok host's, and the sha256 of the bytes each host
    manifest was parsed from."""

    set_dir: Path
    set: SetManifest
    hosts: dict[str, HostManifest]
    host_sha256: dict[str, str] = field(default_factory=dict)


def read_set(set_dir: Path, raw: bytes | None = None) -> SetRecords:
    """Read and validate a set's manifest (``raw``: its bytes as :func:`read_manifest` read them) and every ok
    host's manifest, each read once, hashed and parsed from the same bytes (ManifestError on the first fault)."""
    sm = parse_set(_json(read_manifest(set_dir) if raw is None else raw, MANIFEST), MANIFEST)
    hosts, digests = {}, {}
    for name, entry in sorted(sm.hosts.items()):
        if entry.status != "ok":
            continue
        where = f"{name}/{MANIFEST}"
        data = _read(set_dir, where)
        digests[name] = hashlib.sha256(data).hexdigest()
        hosts[name] = parse_host(_json(data, where), name, where)
    return SetRecords(set_dir, sm, hosts, digests)


# --- a restore's record (why here: the module's docstring) -------------------------------------------------------

RUNNING = "running"  # a restore record's status until the restore ends


@dataclass(frozen=True)
class StepTime:
    """One step (or undo) a restore ran on a target, and when."""

    id: str
    name: str
    phase: str
    key: str
    undo: bool
    started: float
    ended: float


@dataclass(frozen=True)
class RestoredHost:
    """A target's line in a restore's record: the set's host restored onto it and, once the restore ended, how
    it went (:class:`maasops.results.HostResult`, field for field)."""

    host: str
    status: str
    source: str
    size: int = 0
    duration: float = 0.0
    downtime: float | None = None
    error: str = ""
    manual: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RestoreRecord:
    """``restore-<run>.json``: a restore run of the set, on record from before anything is touched (``status``
    running) and rewritten with its result when it ends; ``--rollback`` and the drill read it back."""

    operation: str = "restore"
    status: str
    exit_code: int | None = None  # None while running
    set: str
    error: str = ""
    hosts: dict[str, RestoredHost]  # by target
    run_id: str
    started: float
    ended: float | None = None
    database_loaded_on: str | None = None
    dbupgrade_on: str | None = None
    secret_from: str | None = None
    failed_phase: str | None = None
    steps: dict[str, tuple[StepTime, ...]] = field(default_factory=dict)  # by target
    pruned: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by target: older restores removed
    dbupgrade_runs: int = 0

    def to_json(self) -> dict:
        """The record as written to disk."""
        return asdict(self)


def restore_file(run_id: str) -> str:
    """The file name of restore run ``run_id``'s record in the set's directory."""
    return f"restore-{run_id}.json"


def write_restore(set_dir: Path, record: RestoreRecord) -> Path:
    """Write a restore's record into the set's directory (0600, atomically), replacing the run's earlier one."""
    path = set_dir / restore_file(record.run_id)
    backupset.write_json(path, record.to_json())
    return path


def _restored_host(o: _Obj, target: str) -> RestoredHost:
    if o.str("host", optional=True) not in (None, target):
        raise ManifestError(f"{o.where}: says host {o.str('host')[:40]!r}, but is the line of {target}")
    return RestoredHost(host=target, status=o.str("status", optional=True) or RUNNING,
                        source=safe_name(o.str("source"), f"{o.where}: source"), size=o.int("size", optional=True) or 0,
                        duration=o.num("duration", optional=True) or 0.0, downtime=o.num("downtime", optional=True),
                        error=o.str("error", optional=True) or "", manual=o.strs("manual"))


def _step_time(data: object, where: str) -> StepTime:
    o = _Obj(data, where)
    return StepTime(id=o.str("id"), name=o.str("name"), phase=o.str("phase"), key=o.str("key"), undo=o.bool("undo"),
                    started=o.num("started"), ended=o.num("ended"))


def _by_target(o: _Obj, key: str, optional: bool) -> _Obj:
    """The object at ``key`` (empty when optional and absent), each of its keys a target's name (a safe name)."""
    inner = o.obj(key, optional) or _Obj({}, f"{o.where}: {key}")
    for target in inner.data:
        safe_name(target, f"{inner.where} has target")
    return inner


def parse_restore(data: object, where: str) -> RestoreRecord:
    """A restore's record from its JSON, validated (ManifestError naming ``where`` and the field otherwise)."""
    o = _Obj(data, where)
    run_id = o.str("run_id")
    if not RUN_ID.fullmatch(run_id):
        raise ManifestError(f"{where}: run_id {run_id[:40]!r} is not a restore run's time")
    lines, timings, removed = (_by_target(o, "hosts", False), _by_target(o, "steps", True),
                               _by_target(o, "pruned", True))
    hosts = {t: _restored_host(lines.obj(t), t) for t in lines.data}
    steps = {t: tuple(_step_time(s, f"{timings.where}: {t}[{i}]")
                      for i, s in enumerate(timings._get(t, (list,), False))) for t in timings.data}
    pruned = {t: removed.strs(t) for t in removed.data}
    loaded_on, dbupgrade_on, secret_from = (o.str(k, optional=True) for k in ("database_loaded_on", "dbupgrade_on",
                                                                             "secret_from"))
    for key, target in (("database_loaded_on", loaded_on), ("dbupgrade_on", dbupgrade_on)):
        if target is not None and target not in hosts:
            raise ManifestError(f"{where}: {key} {target[:40]!r} is not a target of this restore")
    if secret_from is not None:
        safe_name(secret_from, f"{where}: secret_from")
    return RestoreRecord(
        operation=o.str("operation", optional=True) or "restore", status=o.str("status"),
        exit_code=o.int("exit_code", optional=True), set=o.str("set"), error=o.str("error", optional=True) or "",
        hosts=hosts, run_id=run_id, started=o.num("started"), ended=o.num("ended", optional=True),
        database_loaded_on=loaded_on, dbupgrade_on=dbupgrade_on, secret_from=secret_from,
        failed_phase=o.str("failed_phase", optional=True), steps=steps, pruned=pruned,
        dbupgrade_runs=o.int("dbupgrade_runs", optional=True) or 0)


def read_restore(set_dir: Path, name: str) -> RestoreRecord:
    """The restore record ``name`` of the set in ``set_dir``, read once following no link and validated
    (ManifestError naming the file when it is not a restore record maasops wrote)."""
    run_id = name.removeprefix("restore-").removesuffix(".json")
    if name != restore_file(run_id) or not RUN_ID.fullmatch(run_id):
        raise ManifestError(f"{name[:80]}: not a restore record's name (restore-<run>.json)")
    record = parse_restore(_json(_read(set_dir, name), name), name)
    if record.run_id != run_id:
        raise ManifestError(f"{name}: holds the record of run {record.run_id!r}, not of {run_id!r}")
    return record
