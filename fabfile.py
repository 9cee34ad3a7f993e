"""maasops: back up and restore a whole MAAS deployment over SSH.

Run `fab --list` for the runbook, `fab --help TASK` for a task's options.
Hosts come from -H (with -S ssh_config, --gateway, --prompt-for-sudo-password as
Fabric users expect), from --inventory FILE, or from the local lab.
"""

from invoke import Collection, task

from maasops import cli
from maasops.lab import tasks as lab_tasks

FLEET_HELP = {
    "inventory": "inventory YAML file (instead of -H)",
    "lab-dir": "lab directory used when neither -H nor --inventory is given (default .lab)",
    "parallel": "hosts worked on at once (default 8)",
    "accept-new-host-keys": "trust and record host keys not yet in known_hosts (default: refuse)",
    "deployment": "deployment name for -H runs (default: the inventory's, or 'default')",
    "gateway": "jump host for -H runs (user@host:port), like ProxyJump; inventories use defaults.gateway",
}


@task(help=FLEET_HELP, post=[cli.fleet_task("probe", cli.run_probe)])
def probe(c, inventory=None, lab_dir=None, parallel=8, accept_new_host_keys=False, deployment=None,
           gateway=None):
    """1. Look at every controller (read-only): install, version, roles, database, units."""
    cli.enlist(c, "probe", inventory=inventory, lab_dir=lab_dir, parallel=parallel,
               accept_new_host_keys=accept_new_host_keys, deployment=deployment, gateway=gateway)


BACKUP_HELP = {
    **FLEET_HELP,
    "backup-dir": "where backup sets are written: <dir>/<deployment>/<UTC time>/<host>/ (default ./backups)",
    "dry-run": "print every remote command per host and stop; nothing is touched",
    "stop-postgresql": "also stop PostgreSQL on the database host while config is archived, as the MAAS doc "
                       "does; the dump then runs first instead of alongside. Default: PostgreSQL stays up "
                       "(the dump is a live snapshot and its data directory is not archived)",
    "exclude-images": "MAAS 3.5+: leave image-storage out (there it is not a cache: custom images live only there)",
    "db-only-maas": "dump only the MAAS database (pg_dump) even on a dedicated PostgreSQL server",
    "allow-vault": "back up although Vault holds MAAS secrets; the set records that they are missing",
    "compress": "gzip (default), zstd or none, for the dump and the archive (see benchmarks/RESULTS.md)",
    "encrypt-to": "age (age1...) or SSH public keys, comma-separated: archives and dumps are encrypted as they "
                  "arrive; keep the identity safe and away from the backups",
}


@task(help=BACKUP_HELP, post=[cli.fleet_task("backup", cli.run_backup)])
def backup(c, inventory=None, lab_dir=None, backup_dir="backups", parallel=8, dry_run=False,
           stop_postgresql=False, exclude_images=False, db_only_maas=False, allow_vault=False, compress="gzip",
           encrypt_to=None, accept_new_host_keys=False, deployment=None, gateway=None):
    """2. Back up every controller: DB dump (live), stop units, archive config, start units."""
    cli.enlist(c, "backup",
        inventory=inventory, lab_dir=lab_dir, backup_dir=backup_dir, parallel=parallel, dry_run=dry_run,
        stop_postgresql=stop_postgresql, exclude_images=exclude_images, db_only_maas=db_only_maas,
        allow_vault=allow_vault, compress=compress, encrypt_to=encrypt_to, accept_new_host_keys=accept_new_host_keys,
        deployment=deployment, gateway=gateway)


RESTORE_HELP = {
    **FLEET_HELP,
    "backup-set": "the set to restore: backups/<deployment>/<UTC time>",
    "map": "restore onto other hosts: old=new,old2=new2 (default: each archive to the host it came from)",
    "allow-upgrade": "restore onto a newer MAAS major.minor and let dbupgrade migrate (never onto an older one)",
    "maas-url": "re-point every rack whose maas_url differs to this region URL (a DR site)",
    "database-host": "rewrite database_host in the regiond.conf of regions that use a remote database",
    "safety-dump": "save each target's current database before loading, for rollback (default: yes)",
    "skip-database": "restore files only; load the database yourself (a separate or shared server)",
    "dry-run": "verify, preflight and print every remote command per host; nothing is stopped",
    "rollback": "undo the last restore of this set: put back what it moved aside and the database it replaced",
    "identity": "age identity file (or SSH private key) that decrypts an encrypted set",
}


@task(help=RESTORE_HELP, positional=["backup_set"], post=[cli.fleet_task("restore", cli.run_restore)])
def restore(c, backup_set, inventory=None, lab_dir=None, map=None, allow_upgrade=False, maas_url=None,
            database_host=None, safety_dump=True, skip_database=False, dry_run=False, rollback=False, parallel=8,
            identity=None, accept_new_host_keys=False, deployment=None, gateway=None):
    """4. Restore a set: verify, preflight, stop, load DB, put trees back, sync secret, dbupgrade once, start."""
    cli.enlist(c, "restore",
        backup_set=backup_set, inventory=inventory, lab_dir=lab_dir, map=map, allow_upgrade=allow_upgrade,
        maas_url=maas_url, database_host=database_host, safety_dump=safety_dump, skip_database=skip_database,
        dry_run=dry_run, rollback=rollback, parallel=parallel, identity=identity,
        accept_new_host_keys=accept_new_host_keys, deployment=deployment, gateway=gateway)


@task(help={"backup-set": RESTORE_HELP["backup-set"], "identity": RESTORE_HELP["identity"]},
      positional=["backup_set"])
def verify(c, backup_set, identity=None):
    """3. Check a backup set offline: checksums, sizes, dump completeness, layout; non-zero on any mismatch."""
    cli.run_verify(backup_set, identity)


PLAN_HELP = {**{k: v for k, v in {**BACKUP_HELP, **RESTORE_HELP}.items() if k not in ("dry-run", "rollback")},
             "what": "the operation to plan: backup or restore"}


@task(help=PLAN_HELP, positional=["what"],
      post=[cli.fleet_task("plan", cli.run_plan)])
def plan(c, what, backup_set=None, inventory=None, lab_dir=None, backup_dir="backups", parallel=8,
         stop_postgresql=False, exclude_images=False, db_only_maas=False, allow_vault=False, compress="gzip",
         map=None, allow_upgrade=False, maas_url=None, database_host=None, safety_dump=True, skip_database=False,
         encrypt_to=None, identity=None, accept_new_host_keys=False, deployment=None, gateway=None):
    """0. Print every remote command an operation would run, per host (`fab plan backup`, `fab plan restore -b SET`)."""
    cli.enlist(c, "plan",
        what=what, backup_set=backup_set, inventory=inventory, lab_dir=lab_dir, backup_dir=backup_dir,
        parallel=parallel, stop_postgresql=stop_postgresql, exclude_images=exclude_images,
        db_only_maas=db_only_maas, allow_vault=allow_vault, compress=compress, map=map,
        allow_upgrade=allow_upgrade, maas_url=maas_url, database_host=database_host, safety_dump=safety_dump,
        skip_database=skip_database, encrypt_to=encrypt_to, identity=identity,
        accept_new_host_keys=accept_new_host_keys, deployment=deployment, gateway=gateway)


@task(help={"lab-dir": "where the rehearsal's two lab sites live (default .lab-drill)",
            "keep": "leave both lab sites up afterwards",
            "backup-dir": "where the rehearsal's backup set is written (default ./backups)",
            "regions": "regions per site (default 1)", "racks": "racks per site (default 2)",
            "profile": "MAAS per host, as for lab.up (default deb-3.5,rack1=snap-3.5)",
            "db-mb": "megabytes of boot-image rows in the source database (default 8)"})
def drill(c, lab_dir=".lab-drill", keep=False, backup_dir="backups", regions=1, racks=2,
          profile=lab_tasks.DRILL_PROFILE, db_mb=8):
    """9. DR rehearsal on the local lab: back up a site, restore onto a fresh one, prove them equal."""
    lab_tasks.drill(lab_dir=lab_dir, keep=keep, backup_dir=backup_dir, regions=int(regions), racks=int(racks),
                    profile=profile, db_mb=int(db_mb))


ns = Collection(plan, probe, backup, restore, verify, drill)
ns.add_collection(lab_tasks.ns, name="lab")
