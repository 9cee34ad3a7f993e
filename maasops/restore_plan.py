"""The restore plan of one host, phase by phase, built from its backup manifest and probe facts.

Every host goes through the same phases; the runner finishes a phase on every
host before starting the next (see :mod:`maasops.runner`)::

    upload      private run dir, archive (and the dump on the database loader); every archive member
                checked on the laptop and the archive re-written from them (maasops.confine), the set's bytes
                checked against their sha256 on the laptop, what arrived against what was sent on the host;
                the dump's sha256 checked on the host; a directory-format dump's members checked as they go,
                then it is unpacked and listed with pg_restore -l (maasops.dumps)
    stop        stop the MAAS units (PostgreSQL stays up)
    database    keep the current database for rollback, load the dump           (the loader only)
    files       move each tree aside under a run-stamped name, extract with owners and modes, compare the
                host's listing of what it wrote with the archive, re-point regiond.conf / rackd.conf when
                asked (never through a symbolic link: maasops.hostfiles.no_links)
    secret      write the region's secret to every rack, 0640
    dbupgrade   on exactly one region
    commit      from here on a failure no longer puts the old state back
    start regions, start racks (each waits until its units are active, and a region until its API answers)
    cleanup     remove the uploaded files, prune what older restores left (the newest few stay) and
                dumps that killed backups left

Everything a ``--rollback`` needs is recorded on the host in ``RUN_ROOT/<run id>/state``.
Where files are written is decided by the target's layout (:mod:`maasops.layouts`),
never by the set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from maasops import compression, confine, database, dumps, layouts, probe, services
from maasops.command import Cmd, Q, Word, seq
from maasops.errors import DAMAGED
from maasops.hostfiles import copy_yaml_keys, no_links, record, recorded, replace_yaml_key
from maasops.hostpaths import ASIDE, LEFTOVERS, ROLLED_BACK, RUN_ROOT
from maasops.manifest import HostManifest
from maasops.plan import HostPlan, Phase, Send, Step, StepId
from maasops.probe import HostFacts
from maasops.setfiles import SetFiles

PHASES = (Phase.UPLOAD, Phase.STOP, Phase.DATABASE, Phase.FILES, Phase.SECRET, Phase.DBUPGRADE, Phase.COMMIT,
          Phase.START_REGIONS, Phase.START_RACKS, Phase.CLEANUP)
BEFORE_STOP = PHASES[:PHASES.index(Phase.STOP)]  # phases that change nothing MAAS runs on
UPLOAD_ARCHIVE = "upload-config.tar"
UPLOAD_IMAGES = "upload-images.tar"
UPLOAD_DUMP = "upload-maasdb.sql"
KEEP = 2  # restores whose leftovers (aside copies, kept databases, run records) stay on a host
# sha256 of stdin as "HEX ...": OpenSSL's where the host has it (it uses the CPU's SHA instructions; coreutils'
# sha256sum, built without OpenSSL on Debian and Ubuntu, took 0.97 s for 200 MiB on the lab machine, openssl 0.23 s),
# else sha256sum (which the probe requires).
SHA256_STDIN = Cmd("if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi")


@dataclass(frozen=True)
class RestoreOptions:
    """What the user chose for a restore."""

    allow_upgrade: bool = False
    maas_url: str | None = None  # re-point racks whose maas_url differs
    database_host: str | None = None  # rewrite database_host of regions that use a remote database
    rollback_copy: bool = True  # keep the target's current database for rollback
    skip_database: bool = False
    identity: str | None = None  # age/SSH identity file for an encrypted set
    keep: int = KEEP
    database_elsewhere: bool = False  # a set without the database may be restored (its files only)
    allowed_signers: Path | None = None  # whose signatures to trust (None: the user's default file)
    trust_unsigned: bool = False
    credentials: database.Credentials | None = None  # the operator's, where regiond.conf names no database role


@dataclass(frozen=True)
class FleetRole:
    """What this host does for the fleet in a restore."""

    loads_database: bool = False
    runs_dbupgrade: bool = False
    secret_from: Send | None = None  # the region's secret, for racks
    roles_from_set: bool = False  # the load sets the database roles' passwords to the set's


@dataclass(frozen=True)
class RestoreSpec:
    """What the restore needs after the plan ran: the source host, the run directory, the units started."""

    source: str
    run_dir: str
    units: tuple[str, ...]


def run_dir(run_id: str) -> str:
    """The host's private directory for one restore run."""
    return f"{RUN_ROOT}/{run_id}"


def state_file(run_id: str) -> str:
    """The host's record of one restore run (what --rollback reads)."""
    return f"{run_dir(run_id)}/state"


def aside_path(path: str, run_id: str, inside: bool) -> str:
    """Where a tree is moved aside: beside it, or (a mount point) inside it."""
    return f"{path}/{ASIDE}{run_id}" if inside else f"{path}{ASIDE}{run_id}"


def upload_names(rdir: str) -> tuple[str, ...]:
    """Every name an upload may have in a run directory (each compression)."""
    return tuple(f"{rdir}/{name}{c.suffix}" for name in (UPLOAD_ARCHIVE, UPLOAD_DUMP, UPLOAD_IMAGES)
                 for c in compression.CODECS.values())


def _receive(dest: str, sha256: str) -> Cmd:
    """Write stdin to ``dest`` (private), hashing the bytes as they arrive, and check them against the
    manifest's sha256.

    This is where a restore reads every byte of the set: before anything stops, each
    file's bytes must be the ones the backup recorded. The hash is taken from the stream
    (tee), not by reading the file back.
    """
    return Cmd("umask 077 && sum=$(tee --", Q(dest), "|", SHA256_STDIN, ") || exit 1;",  # tee names what failed
               "[ \"${sum%% *}\" =", Q(sha256), "] || { echo", Q(DAMAGED), ">&2; exit 1; }")


def _receive_emitted(dest: str) -> Cmd:
    """Write stdin (an archive the laptop re-wrote from the one it checked: maasops.confine.emitted) to ``dest``
    (private) and print the sha256 of the bytes as they arrived: the laptop compares it with what it sent."""
    return Cmd("umask 077 && tee --", Q(dest), "|", SHA256_STDIN)


def confinement(m: HostManifest, target: HostFacts, images: bool = False) -> confine.Rules:
    """What the target's layout lets this host's archive (or its images part) write, as member names of it."""
    lay = target.layout
    trees = lay.image_dirs if images else lay.archived_trees(set(m.roles))
    return confine.rules(trees, lay.owner_rules(set(m.roles)),
                         lambda t: layouts.rebase(target.on_host(t), target.snap_data, m.snap_data))


def server_for(m: HostManifest, target: HostFacts, credentials: database.Credentials | None = None) -> database.Server:
    """How the loading host reaches the database server the dump goes into (over the network with the operator's
    ``credentials`` where the target's regiond.conf names no role: Vault keeps them)."""
    return server_on(target, m.dump.how, credentials)


def server_on(f: HostFacts, how: str, credentials: database.Credentials | None = None) -> database.Server:
    """How host ``f`` reaches its database server ``how`` (local | network | maas-test-db): as the superuser on its
    own server, else as regiond.conf's role (or the operator's ``credentials`` where it names none)."""
    db = f.database
    if how == "local":
        host = db.host if db and db.host.startswith("/") else "localhost"
        return database.Server("local", host, db.port if db else layouts.DB_PORT_DEFAULT, layouts.PG_SUPERUSER)
    creds = database.operator_credentials(db.location, db.user, credentials)
    return database.Server(how, db.client_host, db.port, creds.user if creds else db.user,
                           f.on_host(f.layout.regiond_conf), creds.password_file if creds else None)


def database_name(m: HostManifest, target: HostFacts) -> str:
    """The database the dump goes into: the dump's own (local), else the one the target's regiond.conf names."""
    if m.dump.how == "local" or not (target.database and target.database.name):
        return m.dump.database
    return target.database.name


def images_upload(rdir: str) -> str:
    """Where the images part is uploaded in a run directory (as the laptop re-wrote it: an uncompressed tar)."""
    return f"{rdir}/{UPLOAD_IMAGES}"


def _upload_steps(m: HostManifest, files: SetFiles, role: FleetRole, options: RestoreOptions,
                  rid: str) -> tuple[list[Step], str, str]:
    rdir = run_dir(rid)
    arch = m.archive
    upload = f"{rdir}/{UPLOAD_ARCHIVE}"  # as the laptop re-wrote it, uncompressed (maasops.confine.emitted)
    steps = [
        Step(StepId.PREPARE, "prepare private run directory", Cmd(
            "umask 077 && mkdir -p", Q(RUN_ROOT), "&& mkdir", Q(rdir), "&& ln -sfn", Q(rid), Q(RUN_ROOT + "/latest")),
            Phase.UPLOAD),
        Step(StepId.UPLOAD_ARCHIVE, "upload config archive", _receive_emitted(upload),
             Phase.UPLOAD, send=files.send(f"{m.host}/{arch.file}",
                                           identity=options.identity if arch.encryption else None),
             undo=Cmd("rm -f --", *map(Q, upload_names(rdir))), inspect_upload=True,
             estimate=confine.emitted_size(arch.files)),
    ]
    if m.images:
        images = m.images
        steps.append(Step(StepId.UPLOAD_IMAGES, "upload image-storage", _receive_emitted(images_upload(rdir)),
                          Phase.UPLOAD,
            send=files.send(f"{m.host}/{images.file}", identity=options.identity if images.encryption else None),
            inspect_upload=True, estimate=confine.emitted_size(images.files)))
    dump_upload = ""
    if role.loads_database:
        dump = m.dump
        dump_upload = f"{rdir}/{UPLOAD_DUMP}{compression.codec(dump.compression).suffix}"
        directory = dumps.is_directory(dump.kind)
        steps.append(Step(StepId.UPLOAD_DUMP, "upload database dump", _receive(dump_upload,
                                                                                dump.plain_sha256 or dump.sha256),
                          Phase.UPLOAD, send=files.send(f"{m.host}/{dump.file}",
                                                        identity=options.identity if dump.encryption else None),
                          inspect_upload=True))
        if directory:
            steps.append(Step(StepId.UNPACK_DUMP, "unpack the database dump and check it (pg_restore -l)",
                              dumps.unpack(rdir, dump_upload, compression.codec(dump.compression),
                                           dumps.has_roles(dump.kind)),
                              Phase.UPLOAD, undo=Cmd("rm -rf --", Q(dumps.unpacked(rdir)))))
    return steps, upload, dump_upload


def _database_steps(m: HostManifest, target: HostFacts, options: RestoreOptions, rid: str,
                    dump_upload: str) -> tuple[list[Step], list[str]]:
    server, name = server_for(m, target, options.credentials), database_name(m, target)
    rdir, state = run_dir(rid), state_file(rid)
    steps, notes = [], []
    undo = None
    if options.rollback_copy:
        how = "renamed" if server.superuser else "dumped into the run directory"
        steps.append(Step(StepId.KEEP_DATABASE, f"keep the current database for rollback ({how})",
                          database.keep(server, name, rid, rdir, state), Phase.DATABASE,
                          password_file=server.password_file))
        undo = database.put_back(server, name, rid, rdir, state)
    else:
        notes.append("--no-rollback-copy: a failure after the load keeps the loaded database")
    owner = target.database.user if target.database and target.database.user else layouts.DB_USER_DEFAULT
    roles = dumps.has_roles(m.dump.kind)
    if dumps.is_directory(m.dump.kind):
        load = dumps.load(server, rdir, roles, name, owner, f"{rdir}/load.log")
    else:
        load = database.load_set_dump(server, dump_upload, compression.codec(m.dump.compression), name, owner,
                                      roles and server.superuser, f"{rdir}/load.log")
    if server.superuser:
        who = (f"the roles part as {layouts.PG_SUPERUSER} (checked role statements only), " if roles else "") + \
            f"the database created by maasops, its contents as {database.LOADER} (a member of {owner}, no superuser)"
    else:
        who = f"as {server.user} ({server.how}), psql as the OS user {database.NOBODY}"
    steps.append(Step(StepId.LOAD_DATABASE, f"load database dump: {who}", load, Phase.DATABASE, undo=undo,
                      password_file=server.password_file))
    return steps, notes + _source_server(m)


def _source_server(m: HostManifest) -> list[str]:
    """What the source's PostgreSQL admitted, as the backup's probe read it (host manifest ``database``): a DR
    server must listen and admit every region as it did. Set data, shown quoted (repr), never run."""
    db = m.database if isinstance(m.database, dict) else {}
    listen, hba = db.get("listen_addresses"), db.get("hba")
    if not isinstance(listen, str) or not isinstance(hba, list):
        return []
    rules = "; ".join(repr(r[:200]) for r in hba[:probe.MAX_HBA_RULES] if isinstance(r, str)) or "no rule"
    return [f"the source's PostgreSQL listened on {listen[:200]!r} and admitted (pg_hba.conf) {rules}: the server "
            "this restores onto must let every region in the same way (listen_addresses, pg_hba.conf)"]


def contents_list(path: str, run_id: str) -> str:
    """Where a restore lists what a mount-point tree held before it moved its contents aside."""
    return f"{run_dir(run_id)}/contents-{hashlib.sha256(path.encode()).hexdigest()[:16]}"


def put_back_inside(path: str, aside: str, listed: str, dispose: Cmd) -> Cmd:
    """Put a mount-point tree's contents back from ``aside``, exactly as ``listed`` says it held them.

    What is in the tree now but was not listed came with the restore and goes to ``dispose`` (a command
    taking the entry as $1); a listed entry that is in the aside copy comes back; one that never left
    (a restore killed half-way) stays. Nothing happens when there is no list: nothing was moved.
    """
    return Cmd(
        "if [ -f", Q(listed), "]; then",
        "find", Q(path), "-mindepth 1 -maxdepth 1 ! -name", Q(LEFTOVERS), "-printf '%f\\0' |",
        "while IFS= read -r -d '' e; do grep -qzxF -- \"$e\"", Q(listed), "|| {", "set --",
        Word(Q(path + "/"), '"$e"'), "&&", dispose, "; }; done &&",
        "while IFS= read -r -d '' e; do if [ -e", Word(Q(aside + "/"), '"$e"'), "] || [ -L",
        Word(Q(aside + "/"), '"$e"'), "]; then if [ -e", Word(Q(path + "/"), '"$e"'), "] || [ -L",
        Word(Q(path + "/"), '"$e"'), "]; then set --", Word(Q(path + "/"), '"$e"'), "&&", dispose, "; fi; mv --",
        Word(Q(aside + "/"), '"$e"'), Word(Q(path + "/"), '"$e"'), "; fi; done <", Q(listed),
        "&& rmdir", Q(aside), "; fi")


def _aside_step(path: str, rid: str, state: str, inside: bool) -> Step:
    aside = aside_path(path, rid, inside)
    if inside:  # a mount point cannot be renamed: its contents move into a directory inside it
        moved, listed = f"aside-in {path} {aside}", contents_list(path, rid)
        # MAAS's files only: this and earlier restores' leftovers stay where they are. The list is
        # complete before anything moves (written aside, then renamed), so a killed move can be undone.
        command = Cmd(record(state, moved), "&& mkdir -m 0700", Q(aside), "&& find", Q(path),
                      "-mindepth 1 -maxdepth 1 ! -name", Q(LEFTOVERS), "-printf '%f\\0' >", Q(listed + ".tmp"),
                      "&& mv", Q(listed + ".tmp"), Q(listed), "&& while IFS= read -r -d '' e; do mv --",
                      Word(Q(path + "/"), '"$e"'), Word(Q(aside + "/"), '"$e"'), "; done <", Q(listed))
        undo = put_back_inside(path, aside, listed, Cmd('rm -rf -- "$1"'))
        return Step(StepId.MOVE_ASIDE, f"move the contents of {path} aside (a mount point)", command, Phase.FILES,
                    undo=undo, key=path)
    moved, new = f"aside {path} {aside}", f"new {path}"
    # Recorded first: a restore killed between the two leaves a record that says more, never less.
    command = Cmd("if [ -e", Q(path), "] || [ -L", Q(path), "]; then if [ -e", Q(aside), "]; then echo",
                  Q(aside + " already exists"), ">&2; exit 1; fi;", record(state, moved), "&& mv -T", Q(path),
                  Q(aside), "; else", record(state, new), "; fi")
    undo = Cmd("if", recorded(state, moved), "; then if [ -e", Q(aside), "] || [ -L", Q(aside), "]; then rm -rf",
               Q(path), "&& mv -T", Q(aside), Q(path), "; fi; elif", recorded(state, new), "; then rm -rf", Q(path),
               "; fi")
    return Step(StepId.MOVE_ASIDE, f"move {path} aside", command, Phase.FILES, undo=undo, key=path)


def _tree_steps(m: HostManifest, target: HostFacts, upload: str, rid: str) -> list[Step]:
    state = state_file(rid)
    steps, asides = [], {}
    for tree in m.archive.trees:
        path = target.on_host(tree)
        inside = tree in target.mountpoints
        asides[path] = aside_path(path, rid, inside)
        steps.append(_aside_step(path, rid, state, inside))
    transform = None
    if m.snap_data and target.snap_data and m.snap_data != target.snap_data:
        transform = "s,^{},{},".format(m.snap_data.lstrip("/"), target.snap_data.lstrip("/"))
    members = tuple(t.lstrip("/") for t in m.archive.actual_trees)
    owners = target.layout.owner_names(set(m.roles))
    steps.append(Step(StepId.EXTRACT, "extract config archive", confine.extract_command(
        upload, members, owners, transform), Phase.FILES))
    if m.images:
        steps.append(Step(StepId.EXTRACT_IMAGES, "extract image-storage", confine.extract_command(
            images_upload(run_dir(rid)), tuple(t.lstrip("/") for t in m.images.actual_trees), owners,
            transform), Phase.FILES))
    steps.append(_check_extracted(m, target))
    for excluded in m.archive.excluded:
        path = layouts.rebase(excluded, m.snap_data, target.snap_data)
        tree = next((t for t in asides if path.startswith(t + "/")), None)
        if tree is not None:
            kept = asides[tree] + path[len(tree):]
            steps.append(Step(StepId.REUSE_EXCLUDED, f"reuse {path} from the aside copy (hard links)", Cmd(
                no_links(tree, path), "if [ -d", Q(kept), "] && [ ! -e", Q(path), "]; then cp -al", Q(kept), Q(path),
                "; fi"), Phase.FILES, key=path))
    return steps


def _check_extracted(m: HostManifest, target: HostFacts) -> Step:
    """The host lists what the extraction wrote in the trees, and the laptop compares it with the members it
    checked and sent (they are the manifest's listing, member for member): any difference fails the restore
    before its commit, so everything is put back."""
    trees = [target.on_host(t) for t in m.archive.trees]
    if m.images:
        trees += [layouts.rebase(t, m.snap_data, target.snap_data) for t in m.images.actual_trees]
    outer = tuple(t for t in dict.fromkeys(trees) if not any(t.startswith(o + "/") for o in trees))
    return Step(StepId.CHECK_EXTRACTED, "compare what the host wrote with the archive", confine.listing_command(
        outer, LEFTOVERS), Phase.FILES, judge=confine.extracted_judge(
            m.members(), lambda p: layouts.rebase(p, m.snap_data, target.snap_data)))


def tree_of(path: str, m: HostManifest, target: HostFacts) -> str:
    """The restored tree on the target that holds ``path`` (its own directory when none does)."""
    return next((t for t in (target.on_host(t) for t in m.archive.trees) if path.startswith(t + "/")),
                path.rsplit("/", 1)[0])


def _before_restore(path: str, m: HostManifest, target: HostFacts, rid: str) -> str | None:
    """Where the host's own copy of ``path`` is once its tree was moved aside, or None (not in a tree)."""
    for tree in m.archive.trees:
        root = target.on_host(tree)
        if path.startswith(root + "/"):
            return aside_path(root, rid, tree in target.mountpoints) + path[len(root):]
    return None


def _repoint_steps(m: HostManifest, target: HostFacts, role: FleetRole, options: RestoreOptions,
                   rid: str) -> list[Step]:
    lay, roles, steps = target.layout, set(m.roles), []
    if options.database_host and "region" in roles and (m.database or {}).get("location") == "remote":
        conf = target.on_host(lay.regiond_conf)
        own = None if role.roles_from_set else _before_restore(conf, m, target, rid)
        # The new server's credentials are the ones this host had for it (a DR site's own), if it had any;
        # unless the load gave the server the set's roles: then the set's credentials are the server's.
        keys = layouts.REGIOND_DATABASE_KEYS
        top = tree_of(conf, m, target)
        new_host = replace_yaml_key(top, conf, "database_host", f"database_host: {options.database_host}\n")
        steps.append(Step(StepId.SET_DATABASE_HOST, "point regiond.conf at the new database server",
                          Cmd("(", copy_yaml_keys(top, own, conf, keys), ") &&", new_host) if own else new_host,
                          Phase.FILES))
    if options.maas_url and "region" not in roles and m.maas_url != options.maas_url:
        # What `maas-rack register` writes, without what it also does: delete maas_id (the restored
        # rack would register as a new controller), and take the secret on its command line.
        conf = target.on_host(lay.rackd_conf)
        steps.append(Step(StepId.REPOINT_RACK, f"re-point rack to {options.maas_url}",
                          replace_yaml_key(tree_of(conf, m, target), conf, layouts.RACKD_URL_KEY,
                                           f"{layouts.RACKD_URL_KEY}:\n- {options.maas_url}\n"), Phase.FILES))
    return steps


def _secret_step(m: HostManifest, target: HostFacts, role: FleetRole) -> list[Step]:
    if not role.secret_from or "region" in m.roles:
        return []
    lay = target.layout
    secret = target.on_host(lay.secret)
    return [Step(StepId.WRITE_SECRET, "write the region's secret", Cmd(
        no_links(tree_of(secret, m, target), secret), "umask 077 && t=$(mktemp", Q(secret + ".XXXXXX"),
        ") && cat > \"$t\" && chown", Q(lay.state_owner), "\"$t\" && chmod 0640 \"$t\" && mv -T -f \"$t\"",
        Q(secret)), Phase.SECRET, send=role.secret_from)]


def units_to_start(m: HostManifest, target: HostFacts) -> tuple[str, ...]:
    """The units that ran on the source at backup time, as the target's layout names them."""
    lay, roles = target.layout, set(m.roles)
    wanted = lay.units(roles)
    if not m.unit_states:
        return wanted
    source_units = m.lay.units(roles)
    was_active = {u for u in source_units if m.unit_states.get(u) == "active"}
    # A unit the source's layout did not have (a newer MAAS) starts like its siblings.
    return tuple(u for u in wanted if u in was_active or u not in source_units)


def _start_steps(m: HostManifest, target: HostFacts) -> list[Step]:
    phase = Phase.START_REGIONS if "region" in m.roles else Phase.START_RACKS
    start = services.unit_commands(target.install, units_to_start(m, target))
    if not start:
        return []
    steps = [Step(StepId.START_UNITS, "start MAAS units", start.start, phase),
             Step(StepId.CHECK_UNITS, "check MAAS units are active", start.check, phase, sudo=False,
                  resolves=(StepId.STOP_UNITS,))]
    if "region" in m.roles and any(u in start.units for u in target.layout.region_units):
        steps.append(Step(StepId.CHECK_REGION, "check the region answers", services.region_ready(), phase,
                          sudo=False))
    return steps


def prune_command(target: HostFacts, keep: int, server: database.Server | None) -> Cmd:
    """Remove what older restores left on the host (aside and rolled-back copies, run records, kept
    databases), all but the newest ``keep`` of each kind, and what killed backups left (dumps.stale_dumps);
    print each thing removed."""
    n = max(1, int(keep))
    prefixes = [f"{RUN_ROOT}/"]
    for tree in target.layout.archived_trees(set(target.roles)):
        path = target.on_host(tree)
        prefixes += [f"{path}{ASIDE}", f"{path}{ROLLED_BACK}", f"{path}/{ASIDE}", f"{path}/{ROLLED_BACK}"]
    parts = [Cmd("{ ls -1d --", Word(Q(prefix), "[0-9]*"), "2>/dev/null || true; } | sort -r | tail -n", f"+{n + 1}",
                 "| while IFS= read -r p; do rm -rf -- \"$p\" && echo \"removed $p\"; done") for prefix in prefixes]
    parts.append(dumps.stale_dumps(remove=True))
    if server is not None:
        parts.append(database.prune(server, n))
    return seq(*parts)


def restore_plan(m: HostManifest, files: SetFiles, target: HostFacts, role: FleetRole, options: RestoreOptions,
                 run_id: str) -> HostPlan:
    """The steps that restore one host from its backup files (in the set's ``files``) onto the probed ``target``."""
    state = state_file(run_id)
    steps, upload, dump_upload = _upload_steps(m, files, role, options, run_id)
    notes: list[str] = []
    running = tuple(u for u in target.layout.units(set(target.roles)) if target.unit_states.get(u) == "active")
    now = services.unit_commands(target.install, running)
    if now:
        steps.append(Step(StepId.STOP_UNITS, "stop MAAS units", Cmd(record(state, "stopped " + " ".join(now.units)),
                                                                    "&&", now.stop), Phase.STOP,
                          undo=now.start_and_wait, by_hand=now.start))
    if role.loads_database:
        db_steps, db_notes = _database_steps(m, target, options, run_id, dump_upload)
        steps += db_steps
        notes += db_notes
    steps += _tree_steps(m, target, upload, run_id) + _repoint_steps(m, target, role, options, run_id)
    steps += _secret_step(m, target, role)
    if role.runs_dbupgrade:
        steps.append(Step(StepId.DBUPGRADE, "dbupgrade (this region only)", Cmd(*map(Q, target.layout.dbupgrade)),
                          Phase.DBUPGRADE))
    steps.append(Step(StepId.COMMIT, "commit", record(state, "committed"), Phase.COMMIT,
                      resolves=(StepId.MOVE_ASIDE, StepId.LOAD_DATABASE)))
    start = _start_steps(m, target)
    if not start and now:
        notes.append("no units ran on the source: the units stopped here stay stopped")
    steps += start
    server = server_for(m, target, options.credentials) if role.loads_database else None
    rdir = run_dir(run_id)
    steps += [Step(StepId.CLEANUP, "remove uploaded files", Cmd("rm -f --", *map(Q, upload_names(rdir)),
                                                                "&& rm -rf --", Q(dumps.unpacked(rdir))),
                   Phase.CLEANUP, resolves=(StepId.UPLOAD_ARCHIVE,)),
              Step(StepId.PRUNE, f"prune what older restores left (keep the newest {options.keep})",
                   prune_command(target, options.keep, server if server and server.superuser else None),
                   Phase.CLEANUP)]
    spec = RestoreSpec(m.host, run_dir(run_id), units_to_start(m, target) if start else ())
    return HostPlan(target.host, target, tuple(steps), tuple(notes), spec=spec)
