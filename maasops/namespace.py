"""The tasks a user runs, in runbook order: what ``maasops --list`` (and ``fab --list`` in the checkout) shows.

Each task is a :class:`~maasops.options.TaskSpec` (its options from the one table in
:mod:`maasops.options`) and a body in :mod:`maasops.cli`.
"""

from __future__ import annotations

from invoke import Collection

from maasops import cleanup, cli, repo_tasks, schedule
from maasops.lab import tasks as lab_tasks
from maasops.options import TaskSpec, make_task

HOSTS = ("inventory", "lab_dir", "deployment", "jump_host", "accept_new_host_keys", "parallel")
BACKUP = ("backup_dir", "stop_postgresql", "exclude_images", "db_only_maas", "dump_format", "allow_vault", "compress",
          "encrypt_to", "database_name", "database_user", "database_password_file", "database_elsewhere", "dump_from",
          "idle_timeout", "max_stream_gib", "sign_key")
TRUST = ("allowed_signers", "trust_unsigned", "decrypt_key", "database_elsewhere")
RESTORE = ("map", "allow_upgrade", "maas_url", "database_host", "database_user", "database_password_file",
           "rollback_copy", "skip_database", "keep") + TRUST
REPO = ("repo", "repo_password_file", "inventory", "lab_dir", "accept_new_host_keys")
FROM_REPO = REPO + ("set", "deployment")
KEEP = ("keep_daily", "keep_weekly", "keep_monthly")

SPECS = (
    TaskSpec("probe", "1. Look at every controller (read-only): install, version, roles, database, units.",
             HOSTS + ("json",)),
    TaskSpec("plan", "2. Print every remote command an operation would run, per host (plan backup | plan restore "
                     "-s SET).", HOSTS + ("backup_set",) + BACKUP + RESTORE + FROM_REPO + ("rollback", "json"),
             positional=("what",), check=cli.check_plan),
    TaskSpec("backup", "3. Back up every controller: DB dump (live), stop units, archive config, start units "
                       "(--repo: into a restic repository).", HOSTS + BACKUP + ("repo", "repo_password_file",
                                                                                "dry_run", "json", "metrics_file"),
             check=cli.check_backup),
    TaskSpec("push", "4. Store a local set in a restic repository, as it is (deduplicated, off-site).",
             REPO + ("json", "metrics_file"), positional=("backup_set",), check=cli.check_local_set),
    TaskSpec("sets", "5. List the sets in a restic repository: deployment, time, hosts, size, verified.",
             REPO + ("deployment", "json")),
    TaskSpec("verify", "6. Check a backup set offline: signature, checksums, sizes, dump, what it may write.",
             TRUST + FROM_REPO + ("parallel", "json"), positional=("backup_set",), positional_unless="repo",
             check=cli.check_set_named),
    TaskSpec("restore", "7. Restore a set: verify, preflight, stop, load DB, put trees back, sync secret, dbupgrade "
                        "once, start.", HOSTS + RESTORE + FROM_REPO + ("dry_run", "rollback", "json", "metrics_file"),
             positional=("backup_set",), positional_unless="repo", check=cli.check_restore),
    TaskSpec("cleanup", "8. List (--dry-run) or remove what older restores left on the hosts: aside copies, kept "
                        "databases.", HOSTS + ("keep", "dry_run", "json")),
    TaskSpec("prune", "9. Drop a repository's sets by --keep-daily/weekly/monthly (never the newest verified), "
                      "then restic prune.", REPO + KEEP + ("deployment", "dry_run", "json", "metrics_file"),
             check=repo_tasks.check_prune),
    TaskSpec("check", "10. Check a restic repository (restic check; --read-data-subset reads data back).",
             REPO + ("read_data_subset", "deployment", "json", "metrics_file")),
    TaskSpec("schedule", "11. Run backup, prune and check on a timer (systemd): schedule install | status | remove.",
             ("inventory", "repo", "repo_password_file", "on_calendar", "metrics_file", "unit_dir") + KEEP
             + ("read_data_subset", "backup_dir", "database_user", "database_password_file", "max_stream_gib",
                "json"), positional=("action",), check=cli.check_credentials),
)
BODIES = {"probe": cli.run_probe, "plan": cli.run_plan, "backup": cli.run_backup, "push": repo_tasks.run_push,
          "sets": repo_tasks.run_sets, "verify": cli.run_verify, "restore": cli.run_restore,
          "cleanup": cleanup.run_task, "prune": repo_tasks.run_prune, "check": repo_tasks.run_check,
          "schedule": schedule.run_task}
RUNBOOK = tuple(s.name for s in SPECS) + ("drill",)


def build() -> Collection:
    """The collection of every user task, the lab's under ``lab.``."""
    tasks = [make_task(s, cli.enlist(s.name), post=[cli.fleet_task(s.name, BODIES[s.name])], typed=True)
             for s in SPECS]
    ns = Collection(*tasks, lab_tasks.drill_task())
    ns.add_collection(lab_tasks.ns, name="lab")
    return ns


ns = build()
