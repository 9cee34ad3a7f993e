"""``fab drill``: back up a fleet, restore it onto other (or the same) hosts, and prove the restore equal.

The proof is read from the restored hosts over SSH (see :mod:`maasops.proof`):
per-table checksums of the database against the source's, every restored file
equal in bytes, mode and owner to the backup, one secret on every host,
dbupgrade run exactly once, and every unit up, regions started before racks.
The report is printed as a table and written as JSON beside the set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from maasops import backup, backupset, fleet, probe, proof, report, restore, verify
from maasops.backup_plan import BackupOptions
from maasops.plan import actual
from maasops.restore_plan import RestoreOptions


@dataclass
class DrillResult:
    """The drill's verdict and its report (also written as drill-<run>.json beside the set)."""

    ok: bool
    report: dict = field(default_factory=dict)
    set_dir: Path | None = None


def _source_fingerprint(check: verify.SetCheck, sources: dict[str, fleet.Target]) -> tuple[str, dict] | None:
    owners = check.manifest.get("dump_owners", {})
    host = next((h for h, kind in sorted(owners.items()) if kind == "local"), None)
    if host is None:
        return None
    return host, proof.db_fingerprint(sources[host].connection, check.hosts[host].manifest["dump"]["database"])


def _allowed(manifest: dict, facts: probe.HostFacts, options: RestoreOptions) -> set[str]:
    """Files a restore changes on purpose: a rack's secret and re-pointed rackd.conf, a re-pointed regiond.conf."""
    lay = facts.layout
    roles = set(manifest.get("roles", []))
    allowed = set()
    if "region" not in roles:
        allowed.add(actual(lay.secret, facts.snap_data))
        if options.maas_url:
            allowed.add(actual(lay.rackd_conf, facts.snap_data))
    elif options.database_host:
        allowed.add(actual(lay.regiond_conf, facts.snap_data))
    return allowed


def _started(steps: list[dict], name: str = "start MAAS units") -> tuple[float, float] | None:
    s = next((s for s in steps if s["name"] == name), None)
    return (s["started"], s["ended"]) if s else None


def run(sources: list[fleet.Target], targets: list[fleet.Target], mapping: dict[str, str], deployment: str,
        backup_dir: Path, options: RestoreOptions, parallel: int = 8, say: Callable[[str], None] = print,
        extra_checks: Callable[[dict], dict[str, bool]] | None = None) -> DrillResult:
    """Back up ``sources``, restore onto ``targets`` (by ``mapping``), prove equality; print and save the report.

    ``extra_checks`` gets the restore report and returns more named checks (the lab reads its own logs).
    """
    say("== 1/3 backup")
    t0 = time.time()
    b = backup.run(sources, deployment, backup_dir, BackupOptions(), parallel, say=say)
    if b.code or b.set_dir is None:
        say("drill: the backup failed; nothing was restored")
        return DrillResult(False)
    check = verify.read_manifests(b.set_dir)  # restore verifies every byte before it starts
    by_name = {t.name: t for t in sources}
    fingerprint = _source_fingerprint(check, by_name)
    say("\n== 2/3 restore")
    t1 = time.time()
    code, rep = restore.run(b.set_dir, targets, mapping, options, parallel, say=say)
    t2 = time.time()
    if code:
        say("drill: the restore failed; see its table above")
        return DrillResult(False, {"restore": rep}, b.set_dir)
    say("\n== 3/3 proof")
    conns = {t.name: t for t in targets}
    facts = fleet.each([conns[n] for n in rep["hosts"]], lambda t: probe.probe(t.connection), parallel)
    rows, proofs = [], {}
    for name, hrep in sorted(rep["hosts"].items()):
        source = hrep["source"]
        manifest = check.hosts[source].manifest
        f = facts[name]
        if not isinstance(f, probe.HostFacts):
            proofs[name] = proof.HostProof(name, differences=[f"probe failed: {f}"])
            continue
        proofs[name] = proof.prove_host(conns[name].connection, manifest, f, _allowed(manifest, f, options))
    region_secret = verify.secret_digest(check.hosts[rep["secret_from"]].manifest) if rep["secret_from"] else None
    checks: dict[str, bool] = {}
    if fingerprint:
        src_host, want = fingerprint
        loader = rep["database_loaded_on"]
        got = proof.db_fingerprint(conns[loader].connection, check.hosts[src_host].manifest["dump"]["database"])
        same = [t for t in want if got.get(t) == want[t]]
        checks[f"database: {len(same)}/{len(want)} tables equal to {src_host}'s"] = (
            len(same) == len(want) == len(got) or (options.allow_upgrade and len(want) - len(same) <= 1))
    checks["files: every restored file equal in bytes, mode and owner"] = all(
        not p.differences for p in proofs.values())
    checks["secret: one secret on every host, the region's"] = (
        len({p.secret_sha256 for p in proofs.values()}) == 1 and
        (region_secret is None or next(iter(proofs.values())).secret_sha256 == region_secret))
    checks[f"dbupgrade: ran {rep['dbupgrade_runs']} time(s), on {rep['dbupgrade_on']}"] = rep["dbupgrade_runs"] == 1
    checks["services: every unit up"] = all(not p.units_down for p in proofs.values())
    region_ends = [s[1] for n, h in rep["hosts"].items() if "region" in check.hosts[h["source"]].manifest["roles"]
                   and (s := _started(h["steps"]))]
    rack_starts = [s[0] for n, h in rep["hosts"].items() if "region" not in check.hosts[h["source"]].manifest["roles"]
                   and (s := _started(h["steps"]))]
    checks["order: regions started before racks"] = not rack_starts or max(region_ends, default=0) <= min(rack_starts)
    if extra_checks:
        checks.update(extra_checks(rep))
    for name, hrep in sorted(rep["hosts"].items()):
        src = hrep["source"]
        br = b.results.get(src)
        upload = [s for s in hrep["steps"] if s["phase"] == "upload"]
        p = proofs[name]
        rows.append({"host": name, "from": src, "backup": f"{br.duration:.1f}s" if br else "",
                     "backup downtime": f"{br.downtime:.1f}s" if br and br.downtime is not None else "",
                     "transfer": f"{max(s['ended'] for s in upload) - min(s['started'] for s in upload):.1f}s"
                     if upload else "",
                     "restore": f"{hrep['duration']:.1f}s",
                     "restore downtime": f"{hrep['downtime']:.1f}s" if hrep["downtime"] is not None else "",
                     "files": f"{p.files_checked - len(p.differences)}/{p.files_checked}",
                     "secret": p.secret_sha256[:12], "units down": ", ".join(p.units_down) or "-"})
    ok = all(checks.values())
    result = {"ok": ok, "set": str(b.set_dir), "deployment": deployment, "started": t0, "backup_seconds": t1 - t0,
              "restore_seconds": t2 - t1, "proof_seconds": time.time() - t2, "checks": checks, "hosts": rows,
              "differences": {n: p.differences for n, p in proofs.items() if p.differences},
              "restore_run": rep["run_id"]}
    backupset.write_json(b.set_dir / f"drill-{rep['run_id']}.json", result)
    say(report.table(rows))
    say("")
    say(report.table([{"check": k, "result": "ok" if v else "FAILED"} for k, v in checks.items()]))
    for n, diffs in result["differences"].items():
        for d in diffs[:10]:
            say(f"   {n}: {d}")
    say(f"\ndrill {'PASSED' if ok else 'FAILED'}: backup {t1 - t0:.1f}s, restore {t2 - t1:.1f}s; "
        f"report {b.set_dir / ('drill-' + rep['run_id'] + '.json')}")
    return DrillResult(ok, result, b.set_dir)


