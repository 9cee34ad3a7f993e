"""``maasops drill``: the DR rehearsal on the local lab (the product's embedded default): a source site and a fresh
DR site, backup → restore onto DR → proof (:mod:`maasops.drill`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from invoke import Context, Exit

from maasops import connect, fleet, inventory, layouts, progress
from maasops import drill as drill_mod
from maasops import repo as restic
from maasops.backup_plan import BackupOptions
from maasops.commands.fleet_request import FleetRequest
from maasops.lab import lab
from maasops.lab.profiles import PROFILES
from maasops.lab.tasks import bring_up
from maasops.options import TaskSpec
from maasops.parts.database import Credentials
from maasops.progress import QUIET, Transfers
from maasops.restore_plan import RestoreOptions
from maasops.results import STATUS_OF_CODE

DRILL_PROFILE = "deb-3.5,rack1=snap-3.5"
SPEC = TaskSpec("drill", "12. DR rehearsal on the local lab: back up a site, restore onto a fresh one, prove them "
                         "equal.", ("lab_dir", "keep_lab", "backup_dir", "regions", "racks", "profile", "db_mb",
                                    "dedicated_db", "offsite", "dump_format", "json"))


def _dbupgrade_runs(the_lab: lab.Lab) -> int:
    """How many times dbupgrade ran on the lab's regions (MAAS's stand-in logs every run on the host)."""
    return sum(int(the_lab.run(h.name, "cat /var/log/maas-lab/dbupgrade.log 2>/dev/null | wc -l || true").stdout
                   or 0) for h in the_lab.hosts if "region" in h.roles)


def _credentials(site: lab.Lab) -> Credentials:
    """The MAAS database role and its password file, as a site's operator keeps them."""
    return Credentials(layouts.DB_USER_DEFAULT, str(site.database_password_file))


def on_lab(lab_dir: str, keep_lab: bool, backup_dir: str = "backups", regions: int = 1, racks: int = 2,
           profile: str = DRILL_PROFILE, db_mb: int = 8, dedicated_db: bool = False,
           say: Callable[[str], None] = print, transfers: Transfers = QUIET, offsite: bool = False,
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
        if not keep_lab:
            for site in sites:
                lab.down(str(base / site))


def run(c: Context, req: FleetRequest) -> None:
    """Rehearse on the lab and print the proof; exit non-zero when the drill failed."""
    opts, out = req.options, req.out
    req.deployment = "lab"
    with progress.for_output(out) as transfers:
        result = on_lab(lab_dir=opts.lab_dir or ".lab-drill", keep_lab=opts.keep_lab, backup_dir=opts.backup_dir,
                        regions=opts.regions, racks=opts.racks, profile=opts.profile or DRILL_PROFILE,
                        db_mb=opts.db_mb, dedicated_db=opts.dedicated_db, say=out.say, transfers=transfers,
                        offsite=opts.offsite, dump_format=opts.dump_format or "auto")
        out.emit({"operation": "drill", "status": STATUS_OF_CODE.get(result.code, "failed"),
                  "exit_code": result.code, **result.report})
        if result.code:
            raise Exit("drill: FAILED (see above)", code=result.code)
