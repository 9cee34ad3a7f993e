"""Prove a restored fleet equal to its backup set: files, database, secret, services.

Read-only. Every check goes over SSH and returns metadata and hashes only, never
file contents: a listing of the restored trees (type, mode, owner, sha256), a
per-table fingerprint of the database, the sha256 of every secret file, and the
state of every unit.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from fabric import Connection

from maasops import dbcheck, layouts, remote
from maasops.plan import actual, rebase
from maasops.probe import HostFacts

q = shlex.quote
FIELDS = ("path", "type", "mode", "user", "group", "size", "link")
FIND_TYPES = {"f": "file", "d": "dir", "l": "symlink"}


@dataclass
class HostProof:
    """What the proof found on one restored host."""

    host: str
    files_checked: int = 0
    differences: list[str] = field(default_factory=list)
    secret_sha256: str = ""
    units_down: list[str] = field(default_factory=list)


def db_fingerprint(c: Connection, database: str) -> dict[str, str]:
    """``{table: "rows:md5"}`` of a database on the host, read as the PostgreSQL superuser."""
    out = remote.run(c, f"psql -XAt -d {q(database)} -c {q(dbcheck.FINGERPRINT_SQL)}", "prove: database fingerprint",
                     user=layouts.PG_SUPERUSER)
    return dbcheck.parse_fingerprint(out.stdout)


def tree_listing(c: Connection, trees: list[str], prune: list[str]) -> dict[str, dict]:
    """Every path under ``trees`` on the host (not under ``prune``): type, mode, owner, size, link, sha256."""
    skip = " -o ".join(f"-path {q(p)}" for p in prune)
    select = f"\\( {skip} \\) -prune -o" if prune else ""
    roots = " ".join(q(t) for t in trees)
    cmd = (f"for t in {roots}; do [ -e \"$t\" ] || [ -L \"$t\" ] || continue; "
           f"find \"$t\" {select} -printf 'M\\t%p\\t%y\\t%m\\t%u\\t%g\\t%s\\t%l\\n'; "
           f"find \"$t\" {select} -type f -exec sha256sum {{}} + | sed 's/^/H\\t/'; done")
    out = remote.run(c, cmd, "prove: list restored files", sudo=True).stdout
    listing: dict[str, dict] = {}
    for line in out.splitlines():
        if line.startswith("M\t"):
            entry = dict(zip(FIELDS, line[2:].split("\t"), strict=False))
            entry["type"] = FIND_TYPES.get(entry["type"], "other")
            listing[entry["path"]] = entry
        elif line.startswith("H\t"):
            digest, _, path = line[2:].partition("  ")
            listing.setdefault(path, {})["sha256"] = digest
    return listing


def expected_listing(manifest: dict, target: HostFacts) -> dict[str, dict]:
    """The manifest's archive listing with paths as they are on the target (its snap revision)."""
    src = manifest.get("snap_data")
    return {rebase(e["path"], src, target.snap_data): e for e in manifest["archive"]["files"]}


def compare(expected: dict[str, dict], got: dict[str, dict], allowed: set[str]) -> list[str]:
    """Differences between the backup's listing and the host's (paths in ``allowed`` may differ in content)."""
    diffs = []
    for path, e in expected.items():
        g = got.get(path)
        if g is None:
            diffs.append(f"{path}: missing")
            continue
        if g.get("type") != e["type"]:
            diffs.append(f"{path}: is a {g.get('type')}, was a {e['type']}")
            continue
        if e["type"] != "symlink" and int(g.get("mode", "0"), 8) != int(e["mode"], 8):
            diffs.append(f"{path}: mode {int(g.get('mode', '0'), 8):04o}, was {e['mode']}")
        if (g.get("user"), g.get("group")) != (e["user"], e["group"]):
            diffs.append(f"{path}: owner {g.get('user')}:{g.get('group')}, was {e['user']}:{e['group']}")
        if e["type"] == "file" and path not in allowed and g.get("sha256") != e.get("sha256"):
            diffs.append(f"{path}: content differs")
        if e["type"] == "symlink" and g.get("link") != e.get("link"):
            diffs.append(f"{path}: points to {g.get('link')}, was {e.get('link')}")
    diffs += [f"{path}: not in the backup" for path in sorted(set(got) - set(expected))]
    return diffs


def secret_sha256(c: Connection, facts: HostFacts) -> str:
    """sha256 of the host's MAAS secret file (never the secret itself)."""
    path = actual(facts.layout.secret, facts.snap_data)
    out = remote.run(c, f"sha256sum {q(path)}", "compare secrets", sudo=True).stdout.split()
    return out[0] if out else ""


def prove_host(c: Connection, manifest: dict, target: HostFacts, allowed: set[str]) -> HostProof:
    """Compare one restored host with its manifest: files, secret hash, units."""
    proof = HostProof(target.host)
    lay = target.layout
    trees = [actual(t, target.snap_data) for t in manifest["archive"]["trees"]]
    prune = [rebase(p, manifest.get("snap_data"), target.snap_data) for p in manifest["archive"].get("excluded", [])]
    expected = expected_listing(manifest, target)
    got = tree_listing(c, trees, prune)
    proof.files_checked = len(expected)
    proof.differences = compare(expected, got, allowed)
    proof.secret_sha256 = got.get(actual(lay.secret, target.snap_data), {}).get("sha256", "")
    units = lay.units(set(manifest.get("roles", [])))
    states = remote.run(c, f"for u in {' '.join(map(q, units))}; do echo \"$u $({layouts.SYSTEMCTL} is-active $u)\"; "
                           "done", "prove: unit states").stdout.split("\n")
    wanted = {u for u, s in (manifest.get("unit_states") or {}).items() if s == "active"}
    proof.units_down = [line.split()[0] for line in states if line.strip() and line.split()[-1] != "active"
                        and line.split()[0] in wanted]
    return proof
