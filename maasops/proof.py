"""Prove a restored fleet equal to its backup set: files, database, secret, services.

Read-only. Every check goes over SSH and returns metadata and hashes only, never
file contents: a listing of the restored trees (type, mode, owner, sha256), a
per-table fingerprint of the database, the sha256 of every secret file, and the
state of every unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric import Connection

from maasops import channel, fingerprints, layouts
from maasops.command import Cmd, Q
from maasops.hostpaths import LEFTOVERS
from maasops.manifest import HostManifest
from maasops.parts.database import Server
from maasops.probe import HostFacts

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
    started_at: float | None = None  # when the host's first MAAS unit last became active (its systemd says)


def db_fingerprint(c: Connection, server: Server, database: str, pgpassword: bytes | None = None) -> dict[str, str]:
    """``{table: "rows:md5"}`` of a database, read through the host (as the superuser on its own server;
    ``pgpassword``: the operator's, for a server reached with the operator's credentials)."""
    out = channel.run(c, server.client("psql", "-XAt -d", Q(database), "-c", Q(fingerprints.FINGERPRINT_SQL)),
                     "prove: database fingerprint", user="root", pgpassword=pgpassword)
    return fingerprints.parse_fingerprint(out.stdout)


def tree_listing(c: Connection, trees: list[str], prune: list[str]) -> dict[str, dict]:
    """Every path under ``trees`` on the host (not under ``prune``): type, mode, owner, size, link, sha256."""
    # A restore's aside copies inside a tree that is a mount point are its leftovers, not MAAS's files.
    select = Cmd("\\( -name", Q(LEFTOVERS),
                 *[Cmd("-o -path", Q(p)) for p in prune], "\\) -prune -o")
    cmd = Cmd("for t in", *map(Q, trees), "; do [ -e \"$t\" ] || [ -L \"$t\" ] || continue;",
              "find \"$t\"", select, "-printf 'M\\t%p\\t%y\\t%m\\t%u\\t%g\\t%s\\t%l\\n';",
              "find \"$t\"", select, "-type f -exec sha256sum {} + | sed 's/^/H\\t/'; done")
    out = channel.run(c, cmd, "prove: list restored files", user="root").stdout
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


def expected_listing(m: HostManifest, target: HostFacts) -> dict[str, dict]:
    """The manifest's archive listing (and images part's) with paths as they are on the target (its snap
    revision)."""
    return {layouts.rebase(e.path, m.snap_data, target.snap_data): e.__dict__ for e in m.members()}


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
    out = channel.run(c, Cmd("sha256sum", Q(facts.on_host(facts.layout.secret))), "compare secrets", user="root")
    words = out.stdout.split()
    return words[0] if words else ""


def unit_states(c: Connection, units: tuple[str, ...]) -> dict[str, tuple[str, float | None]]:
    """Per unit: its state and when it last became active (systemd's ActiveEnterTimestamp, as a Unix time)."""
    cmd = Cmd("for u in", *map(Q, units), "; do printf '%s %s %s\\n' \"$u\" \"$(", layouts.SYSTEMCTL,
              "is-active \"$u\")\" \"$(", layouts.SYSTEMCTL,
              "show --timestamp=unix -p ActiveEnterTimestamp --value \"$u\")\"; done")
    out = {}
    for line in channel.run(c, cmd, "prove: unit states").stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in units:
            stamp = words[2].lstrip("@") if len(words) > 2 else ""
            out[words[0]] = (words[1], float(stamp) if stamp.replace(".", "", 1).isdigit() else None)
    return out


def prove_host(c: Connection, m: HostManifest, target: HostFacts, allowed: set[str]) -> HostProof:
    """Compare one restored host with its manifest: files, secret hash, units and when they started."""
    proof = HostProof(target.host)
    lay = target.layout
    trees = [target.on_host(t) for t in m.archive.trees]
    prune = [layouts.rebase(p, m.snap_data, target.snap_data) for p in m.archive.excluded]
    expected = expected_listing(m, target)
    got = tree_listing(c, trees, prune)
    proof.files_checked = len(expected)
    proof.differences = compare(expected, got, allowed)
    proof.secret_sha256 = got.get(target.on_host(lay.secret), {}).get("sha256", "")
    states = unit_states(c, lay.units(set(m.roles)))
    wanted = {u for u, s in m.unit_states.items() if s == "active"}
    proof.units_down = [u for u, (s, _) in states.items() if s != "active" and u in wanted]
    started = [t for u, (s, t) in states.items() if u in wanted and t]
    proof.started_at = min(started) if started else None
    return proof
