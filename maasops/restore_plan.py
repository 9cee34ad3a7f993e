"""The restore plan of one host, phase by phase, built from its backup manifest and probe facts.

Every host goes through the same phases; the runner finishes a phase on every
host before starting the next (see :mod:`maasops.runner`)::

    upload      private run dir, archive (and the dump on the database loader); every archive member
                checked on the laptop and the archive re-written from them (maasops.confine), the set's bytes
                checked against their sha256 on the laptop, what arrived against what was sent on the host;
                the dump's sha256 checked on the host; a directory-format dump's members checked as they go,
                then it is unpacked and listed with pg_restore -l (maasops.parts.database)
    stop        stop the MAAS units (PostgreSQL stays up)
    database    set the current database aside for rollback, load the dump      (the loader only)
    files       move each tree aside under a run-stamped name, extract with owners and modes, compare the
                host's listing of what it wrote with the archive, re-point regiond.conf / rackd.conf when
                asked (never through a symbolic link: maasops.hostfiles.no_links)
    secret      write the region's secret to every rack, 0640
    dbupgrade   on exactly one region
    commit      from here on a failure no longer puts the old state back
    start regions, start racks (each waits until its units are active, and a region until its API answers)
    cleanup     remove the uploaded files, prune what older restores left (the newest few stay) and
                dumps that killed backups left

Each part of the set (:mod:`maasops.parts`: config, images, database) gives its own steps of
these phases; this module adds the host's own (the run directory, the units, the re-pointing,
the secret, dbupgrade, commit, cleanup) and puts them all in phase order.

Everything a ``--rollback`` needs is recorded on the host in ``RUN_ROOT/<run id>/state``.
Where files are written is decided by the target's layout (:mod:`maasops.layouts`),
never by the set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maasops import layouts, services
from maasops.backupset import SetFiles
from maasops.command import Cmd, Q, Word, seq
from maasops.hostfiles import copy_yaml_keys, no_links, record, replace_yaml_key
from maasops.hostpaths import ASIDE, ROLLED_BACK, RUN_ROOT, run_dir, state_file, upload_names
from maasops.manifest import HostManifest
from maasops.parts import config, database, images
from maasops.parts.config import tree_of
from maasops.plan import HostPlan, Phase, Send, Step, StepId
from maasops.probe import HostFacts

PHASES = (Phase.UPLOAD, Phase.STOP, Phase.DATABASE, Phase.FILES, Phase.SECRET, Phase.DBUPGRADE, Phase.COMMIT,
          Phase.START_REGIONS, Phase.START_RACKS, Phase.CLEANUP)
BEFORE_STOP = PHASES[:PHASES.index(Phase.STOP)]  # phases that change nothing MAAS runs on
LEFTOVER_RUNS = 2  # restores whose leftovers (aside copies, kept databases, run records) stay on a host


@dataclass(frozen=True)
class RestoreOptions:
    """What the user chose for a restore."""

    allow_upgrade: bool = False
    maas_url: str | None = None  # re-point racks whose maas_url differs
    database_host: str | None = None  # rewrite database_host of regions that use a remote database
    rollback_copy: bool = True  # keep the target's current database for rollback
    skip_database: bool = False
    identity: str | None = None  # age/SSH identity file for an encrypted set
    leftover_runs: int = LEFTOVER_RUNS
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



def _repoint_steps(m: HostManifest, target: HostFacts, role: FleetRole, options: RestoreOptions,
                   run_id: str) -> list[Step]:
    lay, roles, steps = target.layout, set(m.roles), []
    if options.database_host and "region" in roles and m.database is not None and m.database.location == "remote":
        conf = target.on_host(lay.regiond_conf)
        own = None if role.roles_from_set else config.before_restore(conf, m, target, run_id)
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


def prune_command(target: HostFacts, leftover_runs: int, server: database.Server | None) -> Cmd:
    """Remove what older restores left on the host (aside and rolled-back copies, run records, kept
    databases), all but the newest ``keep`` of each kind, and what killed backups left (database.stale_dumps);
    print each thing removed."""
    n = max(1, int(leftover_runs))
    prefixes = [f"{RUN_ROOT}/"]
    for tree in target.layout.archived_trees(set(target.roles)):
        path = target.on_host(tree)
        prefixes += [f"{path}{ASIDE}", f"{path}{ROLLED_BACK}", f"{path}/{ASIDE}", f"{path}/{ROLLED_BACK}"]
    parts = [Cmd("{ ls -1d --", Word(Q(prefix), "[0-9]*"), "2>/dev/null || true; } | sort -r | tail -n", f"+{n + 1}",
                 "| while IFS= read -r p; do rm -rf -- \"$p\" && echo \"removed $p\"; done") for prefix in prefixes]
    parts.append(database.stale_dumps(remove=True))
    if server is not None:
        parts.append(database.prune(server, n))
    return seq(*parts)


def restore_plan(m: HostManifest, files: SetFiles, target: HostFacts, role: FleetRole, options: RestoreOptions,
                 run_id: str) -> HostPlan:
    """The steps that restore one host from its backup files (in the set's ``files``) onto the probed ``target``."""
    state, rdir = state_file(run_id), run_dir(run_id)
    steps = [Step(StepId.PREPARE, "prepare private run directory", Cmd(
        "umask 077 && mkdir -p", Q(RUN_ROOT), "&& mkdir", Q(rdir), "&& ln -sfn", Q(run_id), Q(RUN_ROOT + "/latest")),
        Phase.UPLOAD)]
    steps += config.restore_steps(m, files, target, run_id, identity=options.identity,
                                  images=images.restore_steps(m, files, target, run_id, identity=options.identity))
    notes: list[str] = []
    if role.loads_database:
        db_steps, db_notes = database.restore_steps(m, files, target, run_id, identity=options.identity,
                                                    credentials=options.credentials,
                                                    rollback_copy=options.rollback_copy)
        steps += db_steps
        notes += db_notes
    running = tuple(u for u in target.layout.units(set(target.roles)) if target.unit_states.get(u) == "active")
    now = services.unit_commands(target.install, running)
    if now:
        steps.append(Step(StepId.STOP_UNITS, "stop MAAS units", Cmd(record(state, "stopped " + " ".join(now.units)),
                                                                    "&&", now.stop), Phase.STOP,
                          undo=now.start_and_wait, by_hand=now.start))
    steps += _repoint_steps(m, target, role, options, run_id)
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
    server = database.server_for(m, target, options.credentials) if role.loads_database else None
    steps += [Step(StepId.CLEANUP, "remove uploaded files", Cmd("rm -f --", *map(Q, upload_names(rdir)),
                                                                "&& rm -rf --", Q(database.unpacked(rdir))),
                   Phase.CLEANUP, resolves=(StepId.UPLOAD_ARCHIVE,)),
              Step(StepId.PRUNE, f"prune what older restores left (keep the newest {options.leftover_runs})",
                   prune_command(target, options.leftover_runs, server if server and server.superuser else None),
                   Phase.CLEANUP)]
    steps.sort(key=lambda s: PHASES.index(s.phase))  # each part gave its steps of every phase: in phase order
    spec = RestoreSpec(m.host, rdir, units_to_start(m, target) if start else ())
    return HostPlan(target.host, target, tuple(steps), tuple(notes), spec=spec)
