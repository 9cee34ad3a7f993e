"""The baselines: what an admin would script with OpenSSH to do the same work as maasops.

Each host's backup: dump the database (roles + pg_dump, as maasops does on a dedicated
local server) compressed as maasops compressed it, stop the MAAS units, tar the same
trees with the same excludes and the same compressor, start the units and wait until
they are active and the region's API answers (maasops checks both). One host after
another, one command at a time, as a for-loop over ssh runs them.

Each host's restore: upload the archive (and the dump), stop the units, load the dump
and check the load (psql's exit and its errors, but the harmless ones maasops also
accepts), move aside the trees maasops moves aside (the manifest's), extract, put the
excluded caches back from the aside copy (hard links, as maasops does), run dbupgrade
on the region, start the units and wait as above.

What maasops does beyond them is not in the baselines: the probe, host locks, sha256
checks on each host, the set's signature and manifests, and (restore) the renamed copy
of the replaced database kept for rollback.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from benchmarks.common import fab, fresh_dir, piped, ssh, timed, units_of, wait_ready
from maasops import compression, layouts
from maasops.lab import lab as lab_mod
from maasops.lab.profiles import PROFILES
from maasops.parts import database

DUMP = ("sudo -u postgres bash -o pipefail -c '{ pg_dumpall --roles-only && pg_dump --clean --create --if-exists "
        f"{layouts.DB_NAME_DEFAULT} ; }}'")
RUN_DIR = "/var/tmp/baseline"


def _host(the_lab: lab_mod.Lab, name: str) -> tuple[str, set[str]]:
    h = the_lab.host(name)
    return h.profile, set(h.roles)


def unit_verb(profile: str, roles: set[str], verb: str) -> str:
    """Stop or start a host's MAAS units as the admin would: systemctl (deb) or snap (snap)."""
    if PROFILES[profile].install == "snap":
        return f"sudo snap {verb} {layouts.SNAP_NAME}"
    return f"sudo systemctl {verb} {units_of(profile, roles)}"


def backup_host(the_lab: lab_mod.Lab, name: str, out: Path, codec: str, dump: bool) -> list[str]:
    """One host's backup as a list of ssh command lines (run one after another)."""
    profile, roles = _host(the_lab, name)
    lay = PROFILES[profile].layout
    suffix = compression.codec(codec).suffix
    trees = " ".join(shlex.quote(t.lstrip("/")) for t in lay.archived_trees(roles))
    excludes = " ".join(shlex.quote(f"--exclude={t.lstrip('/')}") for t in lay.cache_excludes)
    steps = [ssh(the_lab, name, piped(DUMP, codec)) + f" > {out}/{name}-dump.sql{suffix}"] if dump else []
    return steps + [
        ssh(the_lab, name, unit_verb(profile, roles, "stop")),
        ssh(the_lab, name, piped(f"sudo tar cpf - -C / {excludes} {trees}", codec)) + f" > {out}/{name}.tar{suffix}",
        ssh(the_lab, name, unit_verb(profile, roles, "start") + " && " +
            wait_ready(units_of(profile, roles), "region" in roles)),
    ]


def backup_fleet(the_lab: lab_mod.Lab, out: Path, codec: str) -> str:
    """Every host's backup in turn (the region that owns the database dumps it), as one shell line."""
    steps = []
    for h in the_lab.hosts:
        if h.profile:
            steps += backup_host(the_lab, h.name, out, codec, h.owns_db)
    return " && ".join(steps)


def _load(dump: str, codec: str) -> str:
    """Load a roles+pg_dump dump as the superuser; fail on psql's exit or any error maasops would not accept."""
    harmless = " ".join(f"-e {shlex.quote(e)}" for e in database.HARMLESS_LOAD_ERRORS)
    return (f"{compression.codec(codec).decompress} {dump} | sudo -u postgres psql -X -q -o /dev/null -f - postgres "
            f"2> {RUN_DIR}/load.log; rc=$?; errors=$(grep ERROR: {RUN_DIR}/load.log | grep -vE {harmless}); "
            "[ $rc = 0 ] && [ -z \"$errors\" ] || { echo \"load failed: $rc $errors\" >&2; exit 1; }")


def restore_host(the_lab: lab_mod.Lab, name: str, host_dir: Path) -> str:
    """One host's restore from its part of a maasops set, as ssh command lines joined with &&."""
    profile, roles = _host(the_lab, name)
    lay = PROFILES[profile].layout
    m = json.loads((host_dir / "manifest.json").read_text())
    arch, dump = m["archive"], m.get("dump")
    upload = [ssh(the_lab, name, f"sudo rm -rf {RUN_DIR} && mkdir -p {RUN_DIR} && cat > {RUN_DIR}/{arch['file']}")
              + f" < {host_dir / arch['file']}"]
    if dump:
        upload.append(ssh(the_lab, name, f"cat > {RUN_DIR}/{dump['file']}") + f" < {host_dir / dump['file']}")
    remote = [unit_verb(profile, roles, "stop")]
    if dump:
        remote.append(_load(f"{RUN_DIR}/{dump['file']}", dump["compression"]))
    trees = arch["actual_trees"]
    for i, tree in enumerate(trees):  # aside, as maasops does: beside the tree, or inside it if it is a mount point
        t, inside, beside = shlex.quote(tree), shlex.quote(tree + "/.maasops-baseline-old"), shlex.quote(tree + ".old")
        remote.append(f"if mountpoint -q {t}; then a{i}={inside} && sudo rm -rf {inside} && sudo mkdir {inside} && "
                      f"sudo find {t} -mindepth 1 -maxdepth 1 ! -name '.maasops-*' -exec mv -t {inside} {{}} +; "
                      f"else a{i}={beside} && sudo rm -rf {beside} && sudo mv -T {t} {beside}; fi")
    remote.append(f"{compression.codec(arch['compression']).decompress} {RUN_DIR}/{arch['file']} | "
                  "sudo tar xpf - -C /")
    for excluded in arch["excluded"]:
        i = next((i for i, t in enumerate(trees) if excluded.startswith(t + "/")), None)
        if i is not None:
            kept = f"\"$a{i}\"{shlex.quote(excluded[len(trees[i]):])}"
            remote.append(f"{{ [ ! -d {kept} ] || [ -e {shlex.quote(excluded)} ] || sudo cp -al {kept} "
                          f"{shlex.quote(excluded)}; }}")
    if "region" in roles:
        remote.append("sudo " + " ".join(lay.dbupgrade))
    remote.append(unit_verb(profile, roles, "start"))
    remote.append(wait_ready(units_of(profile, roles), "region" in roles))
    return " && ".join(upload + [ssh(the_lab, name, " && ".join(remote))])


def restore_fleet(the_lab: lab_mod.Lab, set_dir: Path) -> str:
    """Every host's restore in turn, regions first (as maasops starts them), as one shell line."""
    hosts = sorted((h for h in the_lab.hosts if h.profile), key=lambda h: ("region" not in h.roles, h.name))
    return " && ".join(restore_host(the_lab, h.name, set_dir / h.name) for h in hosts)


def doc_downtime(the_lab: lab_mod.Lab, name: str, codec: str) -> str:
    """The MAAS doc's procedure on one region (dump to a file; stop PostgreSQL and the units; tar the trees and
    the dump; start): prints the seconds the units were stopped, measured on the host."""
    profile, roles = _host(the_lab, name)
    lay = PROFILES[profile].layout
    units = units_of(profile, roles)
    trees = " ".join(t.lstrip("/") for t in lay.archived_trees(roles))
    excludes = " ".join(f"--exclude={t.lstrip('/')}" for t in lay.cache_excludes)
    tar = piped(f"sudo tar cpf - -C / {excludes} {trees} var/tmp/doc-dump.sql", codec)
    return ssh(the_lab, name, "sudo -u postgres pg_dumpall -c > /var/tmp/doc-dump.sql && t0=$(date +%s.%N) && "
                              f"sudo systemctl stop postgresql {units} && {tar} > /var/tmp/doc-backup.tar && "
                              f"sudo systemctl start postgresql {units} && t1=$(date +%s.%N) && "
                              "rm -f /var/tmp/doc-dump.sql /var/tmp/doc-backup.tar && "
                              "awk -v a=\"$t0\" -v b=\"$t1\" 'BEGIN { print \"window\", b - a }'")


def plain_set(inv: str, name: str) -> Path:
    """A maasops set of the lab with a plain SQL dump (``--dump-format plain``), made untimed: what the manual
    restore loads with psql, as the doc's procedure does, whatever format maasops's own set has."""
    out = fresh_dir(name)
    r = timed(fab("backup", "--inventory", inv, "--backup-dir", str(out), "--dump-format", "plain"))
    if r.code:
        raise RuntimeError(r.output[-2000:])
    return sorted((out / "lab").iterdir())[-1]


def dump_kind(set_dir: Path, host: str = "region1") -> str:
    """The kind of the dump in a set (roles+pg_dump, roles+pg_dump-Fd, ...)."""
    return json.loads((set_dir / host / "manifest.json").read_text())["dump"]["kind"]

