"""Benchmark 2: a fleet of 1 region + 5 racks.

maasops in parallel (its default) vs the same maasops with ``--parallel 1`` vs the shell
loop an admin would write (one host after another: dump, stop, tar, start).
"""

from __future__ import annotations

from benchmarks.common import RUNS, fab, fresh_dir, median_of, report, secs, site, ssh, timed
from maasops.lab.profiles import PROFILES

PROFILE = "deb-3.5"
FLEET_DB_MB = 64


def shell_loop(the_lab, out) -> str:
    """Every host in turn, as a for-loop over ssh would back it up."""
    lay = PROFILES[PROFILE].layout
    steps = [ssh(the_lab, "region1", "sudo -u postgres pg_dumpall -c | gzip -1") + f" > {out}/dump.sql.gz"]
    for h in the_lab.hosts:
        if not h.profile:
            continue
        roles = set(h.roles)
        units = " ".join(u for u in lay.units(roles) if u != "maas-dhcpd6")
        trees = " ".join(t.lstrip("/") for t in lay.trees + (lay.region_trees if "region" in roles else ()))
        steps += [ssh(the_lab, h.name, f"sudo systemctl stop {units}"),
                  ssh(the_lab, h.name, f"sudo tar cpf - -C / {trees} | gzip -1") + f" > {out}/{h.name}.tgz",
                  ssh(the_lab, h.name, f"sudo systemctl start {units}")]
    return " && ".join(steps)


def run() -> list[dict]:
    """Run benchmark 2; return its report."""
    with site("fleet", regions=1, racks=5, profile=PROFILE, db_mb=FLEET_DB_MB) as the_lab:
        inv = str(the_lab.inventory)
        par = median_of(lambda: timed(fab("backup", "--inventory", inv, "--backup-dir", str(fresh_dir("f1")))))
        seq = median_of(lambda: timed(fab("backup", "--inventory", inv, "--backup-dir", str(fresh_dir("f2")),
                                          "--parallel", "1")))
        loop = median_of(lambda: timed(shell_loop(the_lab, fresh_dir("f3"))))
        return [report("fleet", f"2. Fleet backup, 1 region ({FLEET_DB_MB} MB DB) + 5 racks, median of {RUNS}",
                       [{"what": "maasops (parallel, default)", "seconds": secs(par)},
                        {"what": "maasops --parallel 1", "seconds": secs(seq)},
                        {"what": "shell loop over ssh, one host after another", "seconds": secs(loop)}],
                       {"maasops parallel / shell loop": (par.seconds / loop.seconds, "≤ 0.5×"),
                        "maasops parallel / maasops --parallel 1": (par.seconds / seq.seconds, "< 1×")})]


if __name__ == "__main__":
    run()
