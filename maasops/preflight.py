"""Everything a restore checks before anything stops: the set, the pairing, and each target.

Set-wide problems raise :class:`Refused`; per-target problems are collected in
:attr:`Preflight.problems`. Either way the restore stops before touching a host.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from maasops import compression, confine, crypto, fleet, hostpaths, layouts, probe, signing, verify
from maasops import manifest as mf
from maasops.backupset import SetFiles
from maasops.parts import database
from maasops.plan import Send
from maasops.restore_plan import RestoreOptions

DISK_MARGIN = 1.2
DB_GROWTH = 1.5  # a loaded database takes about this times its plain dump's size


class Refused(Exception):
    """The restore cannot start; nothing was stopped or changed."""


def parse_map(text: str | None) -> dict[str, str]:
    """``old=new,old2=new2`` into a dict (ValueError on a malformed pair or an unsafe name)."""
    out = {}
    for pair in filter(None, (p.strip() for p in (text or "").split(","))):
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"--map wants old=new pairs, got {pair!r}")
        try:
            out[mf.safe_name(old.strip(), "--map host")] = mf.safe_name(new.strip(), "--map host")
        except mf.ManifestError as exc:
            raise ValueError(str(exc)) from None
    return out


@dataclass
class Preflight:
    """Everything checked before anything stops: the set, the targets' facts, who loads and who upgrades."""

    check: verify.SetCheck  # records, layouts and sizes; the contents are checked while uploading
    pairs: list[tuple[str, fleet.Target]]  # (source host, target)
    ids: list | None = None  # age identities for an encrypted set
    facts: dict[str, probe.HostFacts] = field(default_factory=dict)  # by target name
    problems: dict[str, str] = field(default_factory=dict)  # target name -> why it is refused
    loader: str | None = None  # target that loads the database
    upgrader: str | None = None  # target region that runs dbupgrade

    @property
    def records(self) -> mf.SetRecords:
        """The set's validated records."""
        return self.check.records

    @property
    def loads_roles(self) -> bool:
        """True when the dump loaded holds the server's roles (a dedicated cluster's roles + pg_dump, or an old
        set's pg_dumpall): their passwords become the set's. A plain pg_dump leaves the server's roles as they are."""
        holder = self.records.hosts.get(self.records.set.database.dumped_by or "") if self.loader else None
        return bool(holder and holder.dump and holder.dump.kind in mf.ROLE_DUMP_KINDS)

    def target_of(self, source: str) -> str:
        """The target a backed-up host is restored onto."""
        return next(t.name for s, t in self.pairs if s == source)


def version_problem(m: mf.HostManifest, f: probe.HostFacts, allow_upgrade: bool) -> str | None:
    """Why the target's MAAS cannot take this host's backup (install type, version), or None."""
    if f.install != m.install:
        return (f"install type differs: the backup is {m.install}, the host has {f.install or 'no MAAS'}; "
                f"install MAAS as a {m.install} first")
    src, dst = layouts.parse_version(m.maas_version), layouts.parse_version(f.version)
    if dst < src:
        return f"the host runs MAAS {f.short_version}, older than the backup's {src[0]}.{src[1]}: never supported"
    if dst != src and not allow_upgrade:
        return (f"the host runs MAAS {f.short_version}, the backup is from {src[0]}.{src[1]}; install "
                f"{src[0]}.{src[1]}, or pass --allow-upgrade to restore and let dbupgrade migrate")
    return None


def _role_problem(m: mf.HostManifest, f: probe.HostFacts) -> str | None:
    if not set(m.roles) <= set(f.roles):
        return (f"the backup is of a {'+'.join(m.roles)} controller, the host is "
                f"{'+'.join(f.roles) or 'no'} controller")
    allowed = f.layout.archived_trees(set(m.roles))
    if not set(m.archive.trees) <= set(allowed):
        return f"the backup's trees {sorted(set(m.archive.trees) - set(allowed))} are not {f.layout.name} trees"
    return None


def _tool_problem(m: mf.HostManifest, f: probe.HostFacts) -> str | None:
    tool = compression.codec(m.archive.compression).tool
    if tool and tool not in f.tools:
        return f"the set is {m.archive.compression}-compressed and {tool} is not installed on this host"
    return None


def _mount_problem(f: probe.HostFacts) -> str | None:
    trees = set(f.layout.archived_trees(set(f.roles)))
    nested = [p for p in f.mountpoints if p not in trees]
    if nested:
        return (f"{', '.join(nested)} is a mount point inside a MAAS tree: a restore cannot move it aside; "
                "unmount it for the restore, or restore that tree by hand")
    return None


def disk_needs(m: mf.HostManifest, f: probe.HostFacts, loads_db: bool, keeps_copy: bool) -> dict[str, int]:
    """Bytes a restore writes, per path it writes them under (uploads, each tree, the database)."""
    needs: dict[str, int] = defaultdict(int)
    uploads = hostpaths.WORK_ROOT
    needs[uploads] += confine.emitted_size(m.members())  # the archives go up as the laptop re-wrote them
    for tree in m.archive.trees:
        root = m.on_host(tree)
        needs[tree] += sum(e.size or 0 for e in m.members() if mf.within(e.path, (root,)))
    if loads_db and m.dump:
        needs[uploads] += m.dump.size
        if database.is_directory(m.dump.kind):
            needs[uploads] += m.dump.uncompressed_size  # unpacked beside the upload
        if m.dump.how == "local":
            needs["database"] += int(m.dump.uncompressed_size * DB_GROWTH)
        elif keeps_copy:
            needs[uploads] += m.dump.size  # the current database, dumped for rollback
    return needs


def disk_problem(m: mf.HostManifest, f: probe.HostFacts, loads_db: bool, keeps_copy: bool) -> str | None:
    """Why the target's disks cannot take the restore, per filesystem; unknown free space is a problem too."""
    per_fs: dict[str, int] = defaultdict(int)
    free: dict[str, int] = {}
    for path, need in disk_needs(m, f, loads_db, keeps_copy).items():
        space = (f.database.data_space if f.database else None) if path == "database" else f.space.get(path)
        if space is None:
            where = "the database's data directory" if path == "database" else path
            return f"cannot measure the free space for {where} on this host: refusing rather than guessing"
        per_fs[space.mount] += need
        free[space.mount] = space.free
    short = [f"{mount}: {free[mount] >> 20} MiB free, the restore needs about {int(need * DISK_MARGIN) >> 20} MiB"
             for mount, need in per_fs.items() if free[mount] < need * DISK_MARGIN]
    return "not enough disk on " + "; ".join(short) if short else None


def _database_roles(pf: Preflight, options: RestoreOptions) -> None:
    """Choose the target that loads the database and the region that runs dbupgrade."""
    records = pf.records
    source = records.set.database.dumped_by if not options.skip_database else None
    holder = records.hosts.get(source) if source else None
    if holder is not None and holder.dump is not None:
        pf.loader = pf.target_of(source)
    regions = sorted(pf.target_of(s) for s, m in records.hosts.items() if "region" in m.roles)
    if pf.loader in regions:
        pf.upgrader = pf.loader
    elif regions and (pf.loader or not options.skip_database):
        pf.upgrader = regions[0]


def _host_problem(pf: Preflight, source: str, t: fleet.Target, options: RestoreOptions) -> str | None:
    f = pf.facts[t.name]
    m = pf.records.hosts[source]
    loads = t.name == pf.loader
    return (version_problem(m, f, options.allow_upgrade) or _role_problem(m, f) or _mount_problem(f)
            or disk_problem(m, f, loads, options.rollback_copy) or _tool_problem(m, f)
            or (database.target_problem(t.connection, m, f, options.credentials) if loads else None))


def _pairs(check: verify.SetCheck, targets: list[fleet.Target], mapping: dict[str, str]) -> list:
    by_name = {t.name: t for t in targets}
    pairs, missing = [], []
    for source in sorted(check.records.hosts):
        name = mapping.get(source, source)
        (pairs.append((source, by_name[name])) if name in by_name else missing.append(f"{source}->{name}"))
    if missing:
        raise Refused(f"no target host for {', '.join(missing)}: give them in -H/--inventory or map them "
                      f"with --map old=new")
    doubled = sorted({t.name for _, t in pairs if sum(1 for _, u in pairs if u.name == t.name) > 1})
    if doubled:
        raise Refused(f"two backed-up hosts would be restored onto {', '.join(doubled)}: fix --map")
    unknown = set(mapping) - set(check.records.hosts)
    if unknown:
        raise Refused(f"--map names hosts that are not in the set: {', '.join(sorted(unknown))}")
    return pairs


def policy(options: RestoreOptions) -> verify.Policy:
    """What the set must prove: signed by whom allowed_signers lists (or accepted unsigned), holding the database."""
    return verify.Policy(options.allowed_signers or signing.default_allowed_signers(), options.trust_unsigned,
                         options.database_elsewhere)


def check_set(set_dir: Path, options: RestoreOptions, parallel: int,
              files: SetFiles | None = None) -> tuple[verify.SetCheck, list | None]:
    """The set's records and sizes, checked (Refused when they do not verify); and the identities to decrypt it."""
    try:
        ids = crypto.identities(Path(options.identity)) if options.identity else None
    except (OSError, crypto.CryptoError) as exc:
        raise Refused(f"--decrypt-key: {exc}") from None
    check = verify.verify_set(set_dir, policy(options), parallel, ids, content=False, files=files)
    sealed = sorted(h.host for h in check.hosts.values() if verify.SEALED in h.notes)
    if sealed and ids is None:
        raise Refused(f"the set is encrypted ({', '.join(sealed)}): give the identity that decrypts it with "
                      "--decrypt-key")
    problem = check.problem()
    if problem:
        raise Refused(problem)
    return check, ids


def preflight(set_dir: Path, targets: list[fleet.Target], mapping: dict[str, str], options: RestoreOptions,
              parallel: int, files: SetFiles | None = None) -> Preflight:
    """Verify the set's records, pair source hosts with targets, probe and check every target.

    The set's archives and dumps are read through ``files`` when given. Raises Refused for
    set-wide problems; per-host problems are in ``Preflight.problems``.
    """
    check, ids = check_set(set_dir, options, parallel, files)
    pf = Preflight(check, _pairs(check, targets, mapping), ids)
    for name, f in fleet.probe_all([t for _, t in pf.pairs], parallel).items():
        if isinstance(f, probe.HostFacts):
            pf.facts[name] = f
        else:
            pf.problems[name] = f"probe failed: {f}"
    _database_roles(pf, options)
    for source, t in pf.pairs:
        if t.name in pf.facts:
            try:
                problem = _host_problem(pf, source, t, options)
            except (layouts.UnknownLayout, ValueError) as exc:
                problem = str(exc)
            if problem:
                pf.problems[t.name] = problem
    return pf


def secret_source(pf: Preflight, identity: str | None) -> tuple[str, Send] | None:
    """The region whose secret every rack gets (the database's region, else the first), as an archive member."""
    regions = sorted(s for s, m in pf.records.hosts.items() if "region" in m.roles)
    if not regions:
        return None
    source = next((s for s in regions if pf.target_of(s) == pf.loader), regions[0])
    m = pf.records.hosts[source]
    member = m.on_host(m.lay.secret).lstrip("/")
    arch = m.archive
    return source, pf.check.files.send(f"{source}/{arch.file}", member, arch.compression,
                                       identity if arch.encryption else None)
