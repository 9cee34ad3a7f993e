"""``fab lab.up`` / ``lab.status`` / ``lab.down``: the local controller lab's tasks.

These names and flags are a contract scripts outside the project rely on.
"""

from __future__ import annotations

import time
from pathlib import Path

from invoke import Collection, Exit, task

from maasops import connect, fleet, inventory, report
from maasops import drill as drill_mod
from maasops.lab import lab
from maasops.lab.profiles import PROFILES
from maasops.restore_plan import RestoreOptions

UP_HELP = {
    "regions": "number of region controllers (region1..N; region1 owns the database)",
    "racks": "number of rack controllers (rack1..M)",
    "profile": f"MAAS per host: one of {', '.join(PROFILES)}, or P,host=P2,... per host",
    "db-mb": "megabytes of boot-image rows seeded into maasdb",
    "combined": "make region1 a region+rack controller",
    "lab-dir": "where the lab keeps its state, ssh_config, known_hosts, inventory (default .lab)",
    "direct": "let the laptop reach hosts directly too (default: only through the bastion)",
}


def _rows(the_lab: lab.Lab) -> list[dict]:
    return [{"host": h.name, "address": h.address, "profile": h.profile or "-",
             "roles": "+".join(h.roles) or "bastion",
             "notes": ", ".join(filter(None, ["database" if h.owns_db else "",
                                              "sudo password" if h.sudo_password else ""]))}
            for h in the_lab.hosts]


def bring_up(lab_dir: str, **kwargs) -> lab.Lab:
    """Bring a lab up and print its hosts and how to reach them."""
    started = time.monotonic()
    try:
        the_lab = lab.up(lab_dir, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise Exit(f"lab.up failed: {exc}", code=1) from None
    print(report.table(_rows(the_lab)))
    print(f"\nlab up in {time.monotonic() - started:.1f}s: fab -S {the_lab.ssh_config} -H region1 ... "
          f"or --inventory {the_lab.inventory}")
    return the_lab


@task(help=UP_HELP)
def up(c, regions=1, racks=2, profile="deb-3.5", db_mb=4, combined=False, lab_dir=".lab", direct=False):
    """Bring up simulated MAAS controllers (own sshd, files, PostgreSQL) on this machine."""
    bring_up(lab_dir, regions=int(regions), racks=int(racks), profile=profile, db_mb=int(db_mb),
             combined=combined, bastion_only=not direct)


@task(help={"lab-dir": UP_HELP["lab-dir"]})
def status(c, lab_dir=".lab"):
    """Show the lab's hosts and whether their sshd and PostgreSQL answer."""
    try:
        rows = lab.status(lab_dir)
    except FileNotFoundError:
        raise Exit(f"no lab is up in {lab_dir}", code=1) from None
    print(report.table(rows))


@task(help={"lab-dir": UP_HELP["lab-dir"]})
def down(c, lab_dir=".lab"):
    """Tear the lab down: no process, mount, address or file of it is left."""
    removed = lab.down(lab_dir)
    print(f"lab in {lab_dir} is down ({len(removed)} hosts removed)")


DRILL_PROFILE = "deb-3.5,rack1=snap-3.5"


def _dbupgrade_runs(the_lab: lab.Lab) -> int:
    """How many times dbupgrade ran on the lab's regions (the stand-in logs every run)."""
    return sum(int(the_lab.run(h.name, "cat /var/log/maas-lab/dbupgrade.log 2>/dev/null | wc -l || true").stdout
                   or 0) for h in the_lab.hosts if "region" in h.roles)


def drill(lab_dir: str, keep: bool, backup_dir: str = "backups", regions: int = 1, racks: int = 2,
          profile: str = DRILL_PROFILE, db_mb: int = 8) -> drill_mod.DrillResult:
    """The DR rehearsal on the lab: a source site and a fresh DR site, backup → restore onto DR → proof."""
    base = Path(lab_dir)
    sites = {}
    try:
        for site in ("source", "dr"):
            print(f"== lab site {site!r}")
            sites[site] = bring_up(str(base / site), regions=regions, racks=racks, profile=profile, db_mb=db_mb)
            print()
        src, dr = sites["source"], sites["dr"]
        region1 = dr.host("region1").address
        options = RestoreOptions(maas_url=f"http://{region1}:5240/MAAS",
                                 database_host=region1 if regions > 1 else None)
        sources = fleet.from_deployment(inventory.load(src.inventory), connect.fabric_config())
        targets = fleet.from_deployment(inventory.load(dr.inventory), connect.fabric_config())

        def lab_checks(_: dict) -> dict[str, bool]:
            runs = _dbupgrade_runs(dr)
            return {f"lab: dbupgrade log of the DR regions shows {runs} run(s)": runs == 1}
        result = drill_mod.run(sources, targets, {}, "lab", Path(backup_dir), options, extra_checks=lab_checks)
        if not result.ok:
            raise Exit("drill: FAILED (see above)", code=1)
        return result
    finally:
        if not keep:
            for site in sites:
                lab.down(str(base / site))


ns = Collection(up, status, down)
