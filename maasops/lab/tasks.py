"""``maasops lab.up`` / ``lab.status`` / ``lab.down`` and ``maasops drill``: the local controller lab's tasks.

These names and flags are a contract scripts outside the project rely on.
"""

from __future__ import annotations

import time
from pathlib import Path

from invoke import Collection, Exit

from maasops import cli, connect, fleet, inventory, layouts, output, progress, report
from maasops import drill as drill_mod
from maasops import repo as restic
from maasops.backup_plan import BackupOptions
from maasops.database import Credentials
from maasops.lab import lab
from maasops.lab.profiles import PROFILES
from maasops.options import TaskOptions, TaskSpec, make_task
from maasops.restore_plan import RestoreOptions
from maasops.results import STATUS_OF_CODE
from maasops.transfers import QUIET, Transfers

DRILL_PROFILE = "deb-3.5,rack1=snap-3.5"
LAB = ("regions", "racks", "profile", "db_mb", "combined", "dedicated_db", "lab_dir", "direct")


def _rows(the_lab: lab.Lab) -> list[dict]:
    return [{"host": h.name, "address": h.address, "profile": h.profile or "-",
             "roles": "+".join(h.roles) or ("database" if h.name == lab.DB_HOST else "bastion"),
             "notes": ", ".join(filter(None, ["database" if h.owns_db else "",
                                              "sudo password" if h.sudo_password else ""]))}
            for h in the_lab.hosts]


def bring_up(lab_dir: str, say=print, **kwargs) -> lab.Lab:
    """Bring a lab up and print its hosts and how to reach them."""
    started = time.monotonic()
    try:
        the_lab = lab.up(lab_dir, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise Exit(f"lab.up failed: {exc}", code=1) from None
    say(report.table(_rows(the_lab)))
    say(f"\nlab up in {time.monotonic() - started:.1f}s: maasops -S {the_lab.ssh_config} -H region1 ... "
        f"or --inventory {the_lab.inventory}")
    return the_lab


def _up(c, regions, racks, profile, db_mb, combined, dedicated_db, lab_dir, direct, **_) -> None:
    bring_up(lab_dir or ".lab", regions=int(regions), racks=int(racks), profile=profile or "deb-3.5", db_mb=int(db_mb),
             combined=combined, bastion_only=not direct, dedicated_db=dedicated_db)


def _status(c, lab_dir, **_) -> None:
    try:
        rows = lab.status(lab_dir or ".lab")
    except FileNotFoundError:
        raise Exit(f"no lab is up in {lab_dir or '.lab'}", code=1) from None
    print(report.table(rows))


def _down(c, lab_dir, **_) -> None:
    removed = lab.down(lab_dir or ".lab")
    print(f"lab in {lab_dir or '.lab'} is down ({len(removed)} hosts removed)")


def _dbupgrade_runs(the_lab: lab.Lab) -> int:
    """How many times dbupgrade ran on the lab's regions (MAAS's stand-in logs every run on the host)."""
    return sum(int(the_lab.run(h.name, "cat /var/log/maas-lab/dbupgrade.log 2>/dev/null | wc -l || true").stdout
                   or 0) for h in the_lab.hosts if "region" in h.roles)


def _credentials(site: lab.Lab) -> Credentials:
    """The MAAS database role and its password file, as a site's operator keeps them."""
    return Credentials(layouts.DB_USER_DEFAULT, str(site.database_password_file))


def drill(lab_dir: str, keep: bool, backup_dir: str = "backups", regions: int = 1, racks: int = 2,
          profile: str = DRILL_PROFILE, db_mb: int = 8, dedicated_db: bool = False,
          say=print, transfers: Transfers = QUIET, offsite: bool = False,
          dump_format: str = "auto") -> drill_mod.DrillResult:
    """The DR rehearsal on the lab: a source site and a fresh DR site, backup → restore onto DR → proof.

    ``offsite``: through the source site's off-site restic repository (sftp to its bastion).
    ``dump_format``: the backup's --dump-format (directory rehearses a large database's parallel dump and load).
    """
    base = Path(lab_dir)
    sites = {}
    try:
        for site in ("source", "dr"):
            say(f"== lab site {site!r}")
            sites[site] = bring_up(str(base / site), say, regions=regions, racks=racks, profile=profile,
                                   db_mb=db_mb, dedicated_db=dedicated_db)
            say("")
        src, dr = sites["source"], sites["dr"]
        region1 = dr.host("region1").address
        db_host = dr.host(lab.DB_HOST).address if dedicated_db else region1
        # A Vault region's regiond.conf names no database: the operator of each site gives the MAAS role's
        # credentials (the drill: each lab's own), and the set records that Vault itself is not in it.
        vault = any(PROFILES[h.profile].database == "vault" for h in src.hosts if h.profile)
        options = RestoreOptions(maas_url=f"http://{region1}:5240/MAAS",
                                 database_host=db_host if regions > 1 or dedicated_db else None,
                                 allowed_signers=src.allowed_signers, credentials=_credentials(dr) if vault else None)
        sources = fleet.from_deployment(inventory.load(src.inventory), connect.fabric_config())
        targets = fleet.from_deployment(inventory.load(dr.inventory), connect.fabric_config())

        def lab_checks(_: object) -> dict[str, bool]:
            runs = _dbupgrade_runs(dr)
            return {f"lab: the DR regions' dbupgrade logs show {runs} run(s)": runs == 1}
        repo = restic.open_repo(src.offsite_repo, src.repo_password_file, src.ssh_config) if offsite else None
        with fleet.closing(sources + targets):
            return drill_mod.run(sources, targets, {}, "lab", Path(backup_dir), options, say=say,
                                 extra_checks=lab_checks, sign_key=src.signing_key, transfers=transfers, repo=repo,
                                 backup_options=BackupOptions(
                                     compress="none" if offsite else "auto", dump_format=dump_format,
                                     allow_vault=vault, database_name=layouts.DB_NAME_DEFAULT if vault else None,
                                     credentials=_credentials(src) if vault else None))
    finally:
        if not keep:
            for site in sites:
                lab.down(str(base / site))


DRILL = TaskSpec("drill", "12. DR rehearsal on the local lab: back up a site, restore onto a fresh one, prove them "
                          "equal.", ("lab_dir", "keep_lab", "backup_dir", "regions", "racks", "profile", "db_mb",
                                     "dedicated_db", "offsite", "dump_format", "json"))


def drill_task():
    """The ``drill`` task."""
    def body(c, opts: TaskOptions) -> None:
        out = output.Output(opts.json, c.config.get(cli.VERBOSITY_KEY) or 0)
        with cli.always_reported("drill", out, opts, lambda: "lab"), progress.for_output(out) as transfers:
            result = drill(lab_dir=opts.lab_dir or ".lab-drill", keep=opts.keep_lab, backup_dir=opts.backup_dir,
                           regions=opts.regions, racks=opts.racks, profile=opts.profile or DRILL_PROFILE,
                           db_mb=opts.db_mb, dedicated_db=opts.dedicated_db, say=out.say, transfers=transfers,
                           offsite=opts.offsite, dump_format=opts.dump_format or "auto")
            out.emit({"operation": "drill", "status": STATUS_OF_CODE.get(result.code, "failed"),
                      "exit_code": result.code, **result.report})
            if result.code:
                raise Exit("drill: FAILED (see above)", code=result.code)
    return make_task(DRILL, body, typed=True)


ns = Collection(
    make_task(TaskSpec("up", "Bring up simulated MAAS controllers (own sshd, files, PostgreSQL) on this machine.",
                       LAB), _up),
    make_task(TaskSpec("status", "Show the lab's hosts and whether their sshd and PostgreSQL answer.", ("lab_dir",)),
              _status),
    make_task(TaskSpec("down", "Tear the lab down: no process, mount, address or file of it is left.",
                       ("lab_dir",)), _down),
)
