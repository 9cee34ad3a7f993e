"""``fab lab.up`` / ``lab.status`` / ``lab.down``: the local controller lab's tasks.

These names and flags are a contract scripts outside the project rely on.
"""

from __future__ import annotations

import time
from pathlib import Path

from invoke import Collection, Exit, task

from maasops import backup, connect, fleet, inventory, probe, report
from maasops.backup_plan import BackupOptions
from maasops.cli import probe_rows
from maasops.lab import lab
from maasops.lab.profiles import PROFILES

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


def drill(lab_dir: str, keep: bool, backup_dir: str = "backups") -> None:
    """Rehearse on a fresh lab: up, probe every controller over SSH, back the fleet up, down."""
    the_lab = bring_up(lab_dir, regions=1, racks=2, profile="deb-3.5,rack1=snap-3.4", db_mb=4)
    try:
        dep = inventory.load(the_lab.inventory)
        tgts = fleet.from_deployment(dep, connect.fabric_config())
        results = fleet.each(tgts, lambda t: probe.probe(t.connection))
        print("\nprobe over SSH:")
        print(report.table(probe_rows(results)))
        print("\nbackup:")
        tgts = fleet.from_deployment(dep, connect.fabric_config())
        code = backup.run(tgts, dep.name, Path(backup_dir), BackupOptions())
        if code:
            raise Exit("drill: the backup failed", code=code)
    finally:
        if not keep:
            lab.down(lab_dir)


ns = Collection(up, status, down)
