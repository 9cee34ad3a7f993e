"""The restore plan of one host, phase by phase, built from its backup manifest and probe facts.

Every host goes through the same phases; the runner finishes a phase on every
host before starting the next (see :mod:`maasops.runner`)::

    upload      private run dir, archive (and the dump on the database host), sha256 checked
    stop        stop the MAAS units (PostgreSQL stays up)
    database    save the current database, load the dump             (database host only)
    files       move each tree aside under a run-stamped name, extract with owners and modes
    secret      write the region's secret to every rack, 0640
    dbupgrade   on exactly one region
    commit      from here on a failure no longer puts the old state back
    start regions, start racks
    cleanup     remove the uploaded files

Everything a ``--rollback`` needs is recorded on the host in ``RUN_ROOT/<run id>/state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maasops import backupset, layouts
from maasops.plan import COMPRESSORS, DECOMPRESSORS, HostPlan, Send, Step, actual, q, rebase, unit_commands
from maasops.probe import HostFacts

PHASES = ("upload", "stop", "database", "files", "secret", "dbupgrade", "commit", "start regions", "start racks",
          "cleanup")
BEFORE_STOP = PHASES[:PHASES.index("stop")]  # phases that change nothing MAAS runs on
RUN_ROOT = "/var/lib/maasops/restore"
UPLOAD_ARCHIVE = "upload-config.tar"
UPLOAD_DUMP = "upload-maasdb.sql"
SAVED_DB = "pre-restore-maasdb.sql.gz"
ASIDE = ".maasops-aside-"
ROLLED_BACK = ".maasops-rolledback-"
# psql errors a pg_dumpall -c load always prints for the superuser it runs as; anything else fails the load.
HARMLESS_LOAD_ERRORS = ("current user cannot be dropped", f'role "{layouts.PG_SUPERUSER}" already exists')


@dataclass(frozen=True)
class RestoreOptions:
    """What the user chose for a restore."""

    allow_upgrade: bool = False
    maas_url: str | None = None  # re-point racks whose maas_url differs
    database_host: str | None = None  # rewrite database_host of regions that use a remote database
    safety_dump: bool = True  # save the target's current database before loading, for rollback
    skip_database: bool = False
    identity: str | None = None  # age/SSH identity file for an encrypted set


@dataclass(frozen=True)
class FleetRole:
    """What this host does for the fleet in a restore."""

    loads_database: bool = False
    runs_dbupgrade: bool = False
    secret_from: Send | None = None  # the region's secret, for racks


def run_dir(run_id: str) -> str:
    """The host's private directory for one restore run."""
    return f"{RUN_ROOT}/{run_id}"


def _record(state: str, line: str) -> str:
    return f"(umask 077 && printf '%s\\n' {q(line)} >> {q(state)})"


def load_command(dump: str, compress: str, log: str) -> str:
    """Load a plain SQL dump (pg_dumpall -c or pg_dump --create) as the PostgreSQL superuser; fail on real errors."""
    harmless = " ".join(f"-e {q(e)}" for e in HARMLESS_LOAD_ERRORS)
    return (f"umask 077; {DECOMPRESSORS[compress]} {q(dump)} | runuser -u {layouts.PG_SUPERUSER} -- "
            f"psql -X -q -o /dev/null -f - postgres 2> {q(log)}; rc=$?; "
            f"errors=$(grep 'ERROR:' {q(log)} | grep -v {harmless} | head -n 3); "
            f"[ \"$rc\" = 0 ] && [ -z \"$errors\" ] || "
            f"{{ echo \"loading {dump} failed (psql exit $rc): $errors\" >&2; exit 1; }}")


def _save_db_command(kind: str, database: str, dest: str, state: str) -> str:
    if kind == "pg_dumpall":
        dump = f"runuser -u {layouts.PG_SUPERUSER} -- pg_dumpall -c"
        return f"umask 077 && {dump} | gzip -1 > {q(dest)} && {_record(state, 'saved-db ' + dest)}"
    exists = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"
    dump = f"runuser -u {layouts.PG_SUPERUSER} -- pg_dump --clean --create --if-exists {q(database)}"
    return (f"umask 077; if runuser -u {layouts.PG_SUPERUSER} -- psql -XAtc {q(exists)} | grep -q 1; then "
            f"{dump} | gzip -1 > {q(dest)} && {_record(state, 'saved-db ' + dest)}; fi")


def _terminate_sessions(database: str) -> str:
    sql = (f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
           f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
    return f"psql -XAtc {q(sql)}"


def _units_to_start(manifest: dict, target: HostFacts) -> tuple[str, ...]:
    """The units that ran on the source at backup time, as the target's layout names them."""
    lay = target.layout
    roles = set(manifest.get("roles", []))
    states = manifest.get("unit_states") or {}
    wanted = lay.units(roles)
    if not states:
        return wanted
    source_lay = backupset.manifest_layout(manifest)
    was_active = {u for u in source_lay.units(roles) if states.get(u) == "active"}
    # A unit the source's layout did not have (a newer MAAS) starts like its siblings.
    return tuple(u for u in wanted if u in was_active or u not in source_lay.units(roles))


def _transform(manifest: dict, target: HostFacts) -> str:
    src, dst = manifest.get("snap_data"), target.snap_data
    if src and dst and src != dst:
        expr = "s,^{},{},".format(src.lstrip("/"), dst.lstrip("/"))
        return f" --transform={q(expr)}"
    return ""


def _tree_steps(manifest: dict, target: HostFacts, upload: str, rid: str, state: str) -> list[Step]:
    arch = manifest["archive"]
    steps = []
    asides: dict[str, str] = {}
    for tree in arch["trees"]:
        path = actual(tree, target.snap_data)
        aside = f"{path}{ASIDE}{rid}"
        asides[path] = aside
        moved, new = f"aside {path} {aside}", f"new {path}"
        steps.append(Step(
            f"move {path} aside", phase="files", user="root",
            command=(f"if [ -e {q(path)} ] || [ -L {q(path)} ]; then "
                     f"if [ -e {q(aside)} ]; then echo {q(aside + ' already exists')} >&2; exit 1; fi; "
                     f"mv -T {q(path)} {q(aside)} && {_record(state, moved)}; "
                     f"else {_record(state, new)}; fi"),
            undo=(f"if grep -qxF {q(moved)} {q(state)}; then rm -rf {q(path)} && mv -T {q(aside)} {q(path)}; "
                  f"elif grep -qxF {q(new)} {q(state)}; then rm -rf {q(path)}; fi")))
    compress = arch.get("compression", "none")
    steps.append(Step("extract config archive", phase="files", user="root",
                      command=(f"{DECOMPRESSORS[compress]} {q(upload)} | tar -x -p --same-owner -f - -C /"
                               f"{_transform(manifest, target)}")))
    for excluded in arch.get("excluded", []):
        path = rebase(excluded, manifest.get("snap_data"), target.snap_data)
        tree = next((t for t in asides if path.startswith(t + "/")), None)
        if tree is None:
            continue
        kept = asides[tree] + path[len(tree):]
        steps.append(Step(f"reuse {path} from the aside copy (hard links)", phase="files", user="root",
                          command=(f"if [ -d {q(kept)} ] && [ ! -e {q(path)} ]; then "
                                   f"cp -al {q(kept)} {q(path)}; fi")))
    return steps


def _plain_sha256(entry: dict) -> str:
    """sha256 of a set file's bytes as they arrive on the host (decrypted on the laptop if encrypted)."""
    return entry.get("plain_sha256") or entry["sha256"]


def _identity(entry: dict, options: RestoreOptions) -> str | None:
    return options.identity if entry.get("encryption") else None


DAMAGED = "the bytes received differ from the backup's sha256: the set is damaged (fab verify names the file)"


def _receive(dest: str, sha256: str) -> str:
    """Write stdin to ``dest`` (private) and check it against the manifest's sha256.

    This is where a restore reads every byte of the set: before anything stops, each
    file's bytes must be the ones the backup recorded.
    """
    return (f"umask 077 && cat > {q(dest)} && {{ echo {q(sha256 + '  ' + dest)} | sha256sum -c --status "
            f"|| {{ echo {q(DAMAGED)} >&2; exit 1; }}; }}")


def _set_conf_key(path: str, key: str, value: str) -> str:
    return f"sed -i {q(f's|^{key}:.*|{key}: {value}|')} {q(path)}"


def restore_plan(manifest: dict, host_dir: Path, target: HostFacts, role: FleetRole, options: RestoreOptions,
                 run_id: str) -> HostPlan:
    """The steps that restore one host from its backup files (``host_dir``) onto the probed ``target``."""
    host = target.host
    lay = target.layout
    roles = set(manifest.get("roles", []))
    rdir = run_dir(run_id)
    state = f"{rdir}/state"
    arch = manifest["archive"]
    upload = f"{rdir}/{UPLOAD_ARCHIVE}{COMPRESSORS[arch.get('compression', 'none')][1]}"
    notes: list[str] = []
    steps = [
        Step("prepare private run directory", phase="upload", user="root",
             command=(f"umask 077 && mkdir -p {q(RUN_ROOT)} && mkdir {q(rdir)} && "
                      f"ln -sfn {q(run_id)} {q(RUN_ROOT + '/latest')}")),
        Step("upload config archive", _receive(upload, _plain_sha256(arch)), phase="upload", user="root",
             send=Send(str(host_dir / arch["file"]), identity=_identity(arch, options)),
             undo=f"rm -f {q(rdir)}/upload-*"),
    ]
    dump = manifest.get("dump")
    dump_upload = ""
    if role.loads_database:
        dump_upload = f"{rdir}/{UPLOAD_DUMP}{COMPRESSORS[dump.get('compression', 'none')][1]}"
        steps.append(Step("upload database dump", _receive(dump_upload, _plain_sha256(dump)), phase="upload",
                          user="root", send=Send(str(host_dir / dump["file"]), identity=_identity(dump, options))))
    running = tuple(u for u in lay.units(set(target.roles) or roles) if target.unit_states.get(u) == "active")
    now = unit_commands(target.install, running)
    if now:
        stop = f"{_record(state, 'stopped ' + ' '.join(now.units))} && {now.stop}"
        steps.append(Step("stop MAAS units", stop, user="root", undo=now.start, phase="stop"))
    if role.loads_database:
        saved = f"{rdir}/{SAVED_DB}"
        steps.append(Step(f"disconnect sessions from {dump['database']}", _terminate_sessions(dump["database"]),
                          user=layouts.PG_SUPERUSER, phase="database"))
        undo = None
        if options.safety_dump:
            steps.append(Step("save the current database (for rollback)", phase="database", user="root",
                              command=_save_db_command(dump["kind"], dump["database"], saved, state)))
            undo = (f"if [ -f {q(saved)} ]; then {load_command(saved, 'gzip', rdir + '/undo-load.log')} && "
                    f"{_record(state, 'db-rolled-back')}; fi")
        else:
            notes.append("--no-safety-dump: a failure after the load keeps the loaded database")
        steps.append(Step("load database dump", load_command(dump_upload, dump["compression"], f"{rdir}/load.log"),
                          user="root", undo=undo, phase="database"))
    steps += _tree_steps(manifest, target, upload, run_id, state)
    if options.database_host and "region" in roles:
        db = manifest.get("database") or {}
        if db.get("location") == "remote":
            conf = actual(lay.regiond_conf, target.snap_data)
            steps.append(Step("point regiond.conf at the new database host", phase="files", user="root",
                              command=_set_conf_key(conf, "database_host", options.database_host)))
    if role.secret_from and "region" not in roles:
        secret = actual(lay.secret, target.snap_data)
        steps.append(Step("write the region's secret", phase="secret", user="root", send=role.secret_from,
                          command=(f"umask 077 && t=$(mktemp {q(secret)}.XXXXXX) && cat > \"$t\" && "
                                   f"chown {q(lay.state_owner)} \"$t\" && chmod 0640 \"$t\" && "
                                   f"mv -f \"$t\" {q(secret)}")))
    if role.runs_dbupgrade:
        steps.append(Step("dbupgrade (this region only)", " ".join(map(q, lay.dbupgrade)), user="root",
                          phase="dbupgrade"))
    resolves = tuple(s.name for s in steps if s.phase in ("files", "database") and s.undo)
    if resolves:
        steps.append(Step("commit", _record(state, "committed"), user="root", phase="commit", resolves=resolves))
    phase = "start regions" if "region" in roles else "start racks"
    if options.maas_url and "region" not in roles and manifest.get("maas_url") != options.maas_url:
        secret = actual(lay.secret, target.snap_data)
        # The secret is read on the host from the file just written: it never appears in a command line we build.
        cmd = " ".join(f"\"$(cat {q(secret)})\"" if a == "{secret}" else q(a.format(url=options.maas_url))
                       for a in lay.register_rack)
        steps.append(Step(f"re-point rack to {options.maas_url}", cmd, user="root", phase=phase))
    start = unit_commands(target.install, _units_to_start(manifest, target))
    if start:
        steps.append(Step("start MAAS units", start.start, user="root", phase=phase,
                          resolves=("stop MAAS units",)))
        steps.append(Step("check MAAS units are active", start.check, phase=phase))
    elif now:
        notes.append("no units ran on the source: the units stopped here stay stopped")
    steps.append(Step("remove uploaded files", f"rm -f {q(rdir)}/upload-*", user="root", phase="cleanup",
                      resolves=("upload config archive",)))
    meta = {"source": manifest["host"], "run_dir": rdir, "units": list(start.units) if start else []}
    return HostPlan(host, target, tuple(steps), tuple(notes), meta=meta)
