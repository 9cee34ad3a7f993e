"""The tasks a user runs, in runbook order: what ``maasops --list`` (and ``fab --list`` in the checkout) shows.

Each task is a :class:`~maasops.options.TaskSpec` (its options from the one table in
:mod:`maasops.options`) and a body in :mod:`maasops.cli`.
"""

from __future__ import annotations

from invoke import Collection

from maasops import cleanup, cli
from maasops.lab import tasks as lab_tasks
from maasops.options import TaskSpec, make_task

HOSTS = ("inventory", "lab_dir", "deployment", "jump_host", "accept_new_host_keys", "parallel")
BACKUP = ("backup_dir", "stop_postgresql", "exclude_images", "db_only_maas", "allow_vault", "compress", "encrypt_to",
          "database_name", "database_elsewhere", "dump_from", "idle_timeout", "sign_key")
TRUST = ("allowed_signers", "trust_unsigned", "decrypt_key", "database_elsewhere")
RESTORE = ("map", "allow_upgrade", "maas_url", "database_host", "rollback_copy", "skip_database", "keep") + TRUST

SPECS = (
    TaskSpec("probe", "1. Look at every controller (read-only): install, version, roles, database, units.",
             HOSTS + ("json",)),
    TaskSpec("plan", "2. Print every remote command an operation would run, per host (plan backup | plan restore "
                     "-s SET).", HOSTS + ("backup_set",) + BACKUP + RESTORE, positional=("what",)),
    TaskSpec("backup", "3. Back up every controller: DB dump (live), stop units, archive config, start units.",
             HOSTS + BACKUP + ("dry_run", "json", "metrics_file")),
    TaskSpec("verify", "4. Check a backup set offline: signature, checksums, sizes, dump, what it may write.",
             TRUST + ("inventory", "parallel", "json"), positional=("backup_set",)),
    TaskSpec("restore", "5. Restore a set: verify, preflight, stop, load DB, put trees back, sync secret, dbupgrade "
                        "once, start.", HOSTS + RESTORE + ("dry_run", "rollback", "json", "metrics_file"),
             positional=("backup_set",)),
    TaskSpec("cleanup", "6. List (--dry-run) or remove what older restores left on the hosts: aside copies, kept "
                        "databases.", HOSTS + ("keep", "dry_run", "json")),
)
BODIES = {"probe": cli.run_probe, "plan": cli.run_plan, "backup": cli.run_backup, "verify": cli.run_verify,
          "restore": cli.run_restore, "cleanup": cleanup.run_task}
RUNBOOK = tuple(s.name for s in SPECS) + ("drill",)


def build() -> Collection:
    """The collection of every user task, the lab's under ``lab.``."""
    tasks = [make_task(s, cli.enlist(s.name), post=[cli.fleet_task(s.name, BODIES[s.name])]) for s in SPECS]
    ns = Collection(*tasks, lab_tasks.drill_task())
    ns.add_collection(lab_tasks.ns, name="lab")
    return ns


ns = build()
