"""``maasops drill``: back up a fleet, restore it onto other (or the same) hosts, and prove the restore equal.

Every proof is read from the hosts over SSH (see :mod:`maasops.proof`), never from
maasops's own records: per-table checksums of the database (and of its large objects) against the source's,
every restored file equal in bytes, mode and owner to the backup, one secret on
every host, every unit up and every region's API answering, and regions started
before racks (by the hosts' own systemd timestamps). The report is printed as a
table and written as JSON beside the set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from maasops import (
    backup,
    backupset,
    channel,
    fleet,
    output,
    probe,
    proof,
    reposet,
    reposource,
    restore,
    services,
)
from maasops import manifest as mf
from maasops import repo as restic
from maasops.backup_plan import BackupOptions
from maasops.backupset import SetFiles
from maasops.parts import database
from maasops.parts.database import name_to_load, server_for
from maasops.progress import QUIET, Transfers
from maasops.repo import Repo
from maasops.restore_plan import RestoreOptions
from maasops.results import FAILED, OK, RunResult

Checks = dict[str, bool]


@dataclass
class DrillResult:
    """The drill's verdict and its report (also written as drill-<run>.json beside the set)."""

    ok: bool
    report: dict = field(default_factory=dict)
    set_dir: Path | None = None
    code: int = FAILED  # the exit code: the backup's or restore's when one of them failed, else 0 or 1


def allowed_changes(m: mf.HostManifest, facts: probe.HostFacts, options: RestoreOptions) -> set[str]:
    """Files a restore changes on purpose: a rack's secret and re-pointed rackd.conf, a re-pointed regiond.conf."""
    lay, allowed = facts.layout, set()
    if "region" not in m.roles:
        allowed.add(facts.on_host(lay.secret))
        if options.maas_url:
            allowed.add(facts.on_host(lay.rackd_conf))
    elif options.database_host:
        allowed.add(facts.on_host(lay.regiond_conf))
    return allowed


def _fingerprint(t: fleet.Target, f: probe.HostFacts, m: mf.HostManifest,
                 credentials: database.Credentials | None) -> dict[str, str]:
    """The per-table fingerprint of the database ``m``'s dump came from (or went into), read through host ``t``
    (with the operator's ``credentials`` where the host's regiond.conf names no role)."""
    server = server_for(m, f, credentials)
    return proof.db_fingerprint(t.connection, server, name_to_load(m, f), database.password(server.password_file))


def _database_check(records: mf.SetRecords, want: dict[str, str] | None, got: dict[str, str] | None,
                    options: RestoreOptions) -> Checks:
    if want is None:
        return {}
    got = got or {}
    same = [t for t in want if got.get(t) == want[t]]
    holder = records.set.database.dumped_by
    return {f"database: {len(same)}/{len(want)} tables equal to {holder}'s": (
        len(same) == len(want) == len(got) or (options.allow_upgrade and len(want) - len(same) <= 1))}


def _order_check(records: mf.SetRecords, sources: dict[str, str], proofs: dict[str, proof.HostProof]) -> Checks:
    regions = [p.started_at for n, p in proofs.items() if "region" in records.hosts[sources[n]].roles]
    racks = [p.started_at for n, p in proofs.items() if "region" not in records.hosts[sources[n]].roles]
    if None in regions + racks:
        return {"order: every host's systemd says when its units started": False}
    return {"order: regions started before racks (the hosts' systemd)": not racks or max(regions) <= min(racks)}


def _regions_answer(targets: dict[str, fleet.Target], records: mf.SetRecords, sources: dict[str, str],
                    parallel: int) -> Checks:
    regions = [targets[n] for n, s in sources.items() if "region" in records.hosts[s].roles]
    got = fleet.each(regions, lambda t: channel.run(t.connection, services.region_ready(30), "prove: region answers"),
                     parallel)
    return {"regions: every region's API answers": all(not isinstance(v, BaseException) for v in got.values())}


def prove(records: mf.SetRecords, rep: mf.RestoreRecord, targets: dict[str, fleet.Target], options: RestoreOptions,
          want: dict[str, str] | None, parallel: int) -> tuple[Checks, dict[str, proof.HostProof]]:
    """Every check, read from the restored hosts (which target was restored from which host: the restore's
    record)."""
    sources = {n: h.source for n, h in rep.hosts.items()}
    facts = fleet.probe_all([targets[n] for n in sources], parallel)
    proofs = {}
    for name, source in sorted(sources.items()):
        f, m = facts[name], records.hosts[source]
        proofs[name] = (proof.prove_host(targets[name].connection, m, f, allowed_changes(m, f, options))
                        if isinstance(f, probe.HostFacts) else proof.HostProof(name, differences=[f"probe: {f}"]))
    checks = {}
    loader = rep.database_loaded_on
    if want is not None and loader and isinstance(facts.get(loader), probe.HostFacts):
        got = _fingerprint(targets[loader], facts[loader], records.hosts[records.set.database.dumped_by],
                           options.credentials)
        checks |= _database_check(records, want, got, options)
    region_secret = records.hosts[rep.secret_from].secret_sha256() if rep.secret_from else None
    checks["files: every restored file equal in bytes, mode and owner"] = all(
        not p.differences for p in proofs.values())
    checks["secret: one secret on every host, the region's"] = (
        len({p.secret_sha256 for p in proofs.values()}) == 1 and
        (region_secret is None or next(iter(proofs.values())).secret_sha256 == region_secret))
    checks["services: every unit up"] = all(not p.units_down for p in proofs.values())
    checks |= _regions_answer(targets, records, sources, parallel)
    checks |= _order_check(records, sources, proofs)
    return checks, proofs


def _rows(rep: mf.RestoreRecord, b: RunResult, proofs: dict[str, proof.HostProof]) -> list[dict]:
    rows = []
    for name, h in sorted(rep.hosts.items()):
        src = h.source
        br = b.hosts.get(src)
        upload = [s for s in rep.steps.get(name, ()) if s.phase == "upload"]
        p = proofs[name]
        rows.append({"host": name, "from": src, "backup": f"{br.duration:.1f}s" if br else "",
                     "backup downtime": f"{br.downtime:.1f}s" if br and br.downtime is not None else "",
                     "transfer": f"{max(s.ended for s in upload) - min(s.started for s in upload):.1f}s"
                     if upload else "",
                     "restore": f"{h.duration:.1f}s",
                     "restore downtime": f"{h.downtime:.1f}s" if h.downtime is not None else "",
                     "files": f"{p.files_checked - len(p.differences)}/{p.files_checked}",
                     "secret": p.secret_sha256[:12], "units down": ", ".join(p.units_down) or "-"})
    return rows


def _source_fingerprint(records: mf.SetRecords, sources: list[fleet.Target],
                        credentials: database.Credentials | None) -> dict[str, str] | None:
    holder = records.set.database.dumped_by
    m = records.hosts.get(holder) if holder else None
    if m is None or m.dump is None:
        return None
    t = next(t for t in sources if t.name == holder)
    return _fingerprint(t, probe.probe(t.connection), m, credentials)


def _made(b: RunResult, repo: Repo | None) -> tuple[Path, SetFiles | None]:
    """Where the drill reads the set its backup made: its directory, or the repository (the manifests written
    where a restore from a repository keeps them)."""
    if repo is None:
        return b.set_dir, None
    rs = reposet.find(reposet.catalog(repo), b.details["repo_set"])
    return reposet.materialize(repo, rs, reposource.state_dir()), reposet.RepoFiles(repo, rs)


def run(sources: list[fleet.Target], targets: list[fleet.Target], mapping: dict[str, str], deployment: str,
        backup_dir: Path, options: RestoreOptions, parallel: int = fleet.PARALLEL,
        say: Callable[[str], None] = print, extra_checks: Callable[[mf.RestoreRecord], Checks] | None = None,
        backup_options: BackupOptions | None = None, sign_key: Path | None = None,
        transfers: Transfers = QUIET, repo: Repo | None = None) -> DrillResult:
    """Back up ``sources``, restore onto ``targets`` (by ``mapping``), prove equality; print and save the report.

    ``extra_checks`` gets the restore's record and returns more named checks (the lab reads its own logs);
    ``transfers`` hears the streams' progress. With ``repo`` the set goes into that restic repository and
    the restore streams it back out.
    """
    say("== 1/3 backup")
    t0 = time.time()
    b = backup.run(backup.BackupRequest(sources, deployment, backup_dir, backup_options or BackupOptions(), sign_key,
                                        parallel, repo=repo), say=say, transfers=transfers)
    if b.code or (b.set_dir is None and repo is None):
        say("drill: the backup failed; nothing was restored")
        return DrillResult(False, {"backup": b.to_json()}, code=b.code or FAILED)
    set_dir, files = _made(b, repo)
    records = mf.read_set(set_dir)  # the restore verifies every byte before it starts
    want = _source_fingerprint(records, sources, (backup_options or BackupOptions()).credentials)
    say("\n== 2/3 restore")
    restic_paths = restic.paths().describe() if repo else ""
    if restic_paths:
        say(restic_paths)
    t1 = time.time()
    r = restore.run(set_dir, targets, mapping, options, parallel, say=say, transfers=transfers, files=files)
    t2 = time.time()
    if r.code:
        say("drill: the restore failed; see its table above")
        return DrillResult(False, {"restore": r.to_json()}, set_dir, r.code)
    say("\n== 3/3 proof")
    try:
        rep = mf.read_restore(set_dir, mf.restore_file(r.details["run_id"]))
    except mf.ManifestError as exc:
        say(f"drill: the restore's record cannot be read: {exc}")
        return DrillResult(False, {"restore": r.to_json(), "error": str(exc)}, set_dir, FAILED)
    checks, proofs = prove(records, rep, {t.name: t for t in targets}, options, want, parallel)
    if extra_checks:
        checks |= extra_checks(rep)
    rows = _rows(rep, b, proofs)
    ok = all(checks.values())
    result = {"ok": ok, "set": str(set_dir.absolute()), "deployment": deployment, "started": t0,
              "backup_seconds": t1 - t0, "restore_seconds": t2 - t1, "proof_seconds": time.time() - t2,
              "checks": checks, "hosts": rows,
              "differences": {n: p.differences for n, p in proofs.items() if p.differences},
              "restore_run": rep.run_id, "backup": b.to_json(), "restore": r.to_json(), "restic": restic_paths}
    backupset.write_json(set_dir / f"drill-{rep.run_id}.json", result)
    say(output.table(rows))
    say("")
    say(output.table([{"check": k, "result": "ok" if v else "FAILED"} for k, v in checks.items()]))
    for n, diffs in result["differences"].items():
        for d in diffs[:10]:
            say(f"   {n}: {d}")
    say(f"\ndrill {'PASSED' if ok else 'FAILED'}: backup {t1 - t0:.1f}s, restore {t2 - t1:.1f}s; "
        f"report {set_dir / ('drill-' + rep.run_id + '.json')}")
    return DrillResult(ok, result, set_dir, OK if ok else FAILED)
