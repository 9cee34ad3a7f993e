"""``maasops lab.up`` / ``lab.status`` / ``lab.down``: the local controller lab's own tasks (``maasops drill``, which
rehearses on the lab, is :mod:`maasops.commands.drill`).

These names and flags are a contract scripts outside the project rely on.
"""

from __future__ import annotations

import time

from invoke import Collection, Exit

from maasops import output
from maasops.lab import lab
from maasops.options import TaskSpec, make_task

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
    say(output.table(_rows(the_lab)))
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
    print(output.table(rows))


def _down(c, lab_dir, **_) -> None:
    removed = lab.down(lab_dir or ".lab")
    print(f"lab in {lab_dir or '.lab'} is down ({len(removed)} hosts removed)")


ns = Collection(
    make_task(TaskSpec("up", "Bring up simulated MAAS controllers (own sshd, files, PostgreSQL) on this machine.",
                       LAB), _up),
    make_task(TaskSpec("status", "Show the lab's hosts and whether their sshd and PostgreSQL answer.", ("lab_dir",)),
              _status),
    make_task(TaskSpec("down", "Tear the lab down: no process, mount, address or file of it is left.",
                       ("lab_dir",)), _down),
)
