"""`fab backup` against the lab: real sshd, sudo, PostgreSQL; every profile; faults."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import tarfile
import time

import pytest

from maasops import compression, fingerprints, layouts
from maasops.lab import lab as lab_mod
from maasops.lab.profiles import PROFILES
from maasops.results import PARTIAL
from tests.labtools import FAB, ROOT, fab, mixed_lab, sets, unit_states

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The lab with every profile (labtools.MIXED_PROFILE)."""
    yield from mixed_lab(tmp_path_factory, "fleet")


def host_files(the_lab: lab_mod.Lab, name: str, paths: list[str], excluded: list[str]) -> dict[str, tuple]:
    """What the host really holds under ``paths``: path -> (type, mode, uid, gid)."""
    cmd = f"find {' '.join(paths)} -printf '%p %y %m %U %G\\n'"
    out = {}
    for line in the_lab.run(name, cmd).stdout.splitlines():
        p, kind, mode, uid, gid = line.split()
        if any(p == e or p.startswith(e + "/") for e in excluded):
            continue
        out[p] = ({"f": "file", "d": "dir", "l": "symlink"}[kind], int(mode, 8), int(uid), int(gid))
    return out


def test_backup_of_every_profile_holds_exactly_the_layouts_files(fleet, tmp_path):
    before = unit_states(fleet)
    r = fab("backup", "--inventory", str(fleet.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    [set_dir] = sets(tmp_path)
    assert not set_dir.name.endswith(".partial")
    assert set_dir.stat().st_mode & 0o777 == 0o700
    assert unit_states(fleet) == before  # everything that ran runs again
    for h in fleet.hosts:
        if not h.profile:
            continue
        host_dir = set_dir / h.name
        manifest = json.loads((host_dir / "manifest.json").read_text())
        for f in host_dir.iterdir():
            assert f.stat().st_mode & 0o777 == 0o600, f
        arch = manifest["archive"]
        want = host_files(fleet, h.name, arch["actual_trees"], arch["excluded"])
        with open(host_dir / arch["file"], "rb") as raw, \
                tarfile.open(fileobj=compression.reader(raw, arch["compression"]), mode="r|") as tar:
            got = {"/" + m.name: ("file" if m.isfile() else "dir" if m.isdir() else "symlink", m.mode, m.uid, m.gid)
                   for m in tar}
        assert got == want, h.name
        lay = PROFILES[h.profile].layout
        assert all(not p.startswith(tuple(arch["excluded"]) or ("\0",)) for p in got)
        for cache in lay.cache_excludes:
            assert not any(p.startswith(cache.replace(layouts.SNAP_DATA, manifest["snap_data"] or "")) for p in got)
        assert any(p.endswith("/secret") for p in got), h.name
        assert manifest["downtime"]["seconds"] >= 0
    region = json.loads((set_dir / "region1" / "manifest.json").read_text())
    # The MAAS role and the MAAS database (the restore renames the old database aside instead of copying it).
    assert region["dump"]["kind"] == "roles+pg_dump" and region["dump"]["last_line"] == layouts.DUMP_COMPLETE_LINE
    assert "dump" not in json.loads((set_dir / "region2" / "manifest.json").read_text())  # shared DB: once
    assert "ok" in r.stdout and "downtime" in r.stdout


def test_the_dump_restores_into_a_fresh_postgresql_equal_to_the_source(fleet, tmp_path, scratch_pg):
    r = fab("backup", "--inventory", str(fleet.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout
    region = sets(tmp_path)[0] / "region1"
    dump = json.loads((region / "manifest.json").read_text())["dump"]
    assert dump["compression"] == "zstd"  # --compress auto: the lab's hosts have zstd
    psql = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-h", str(scratch_pg)]
    with open(region / dump["file"], "rb") as raw, compression.reader(raw, dump["compression"]) as src:
        subprocess.run([*psql, "-f", "-", "postgres"], input=src.read(), check=True, capture_output=True, cwd="/")
    restored = subprocess.run([*psql, "-At", "-d", "maasdb", "-c", fingerprints.FINGERPRINT_SQL], check=True,
                              capture_output=True, text=True, cwd="/").stdout
    fingerprint = f"runuser -u postgres -- psql -XAt -d maasdb -c {shlex.quote(fingerprints.FINGERPRINT_SQL)}"
    source = fleet.run("region1", fingerprint).stdout
    assert fingerprints.parse_fingerprint(restored) == fingerprints.parse_fingerprint(source)
    assert len(fingerprints.parse_fingerprint(source)) >= 10


def test_dry_run_prints_every_command_and_touches_nothing(fleet, tmp_path):
    log = "cat /var/log/maas-lab/units.log 2>/dev/null; ls -la --time-style=full-iso /etc/maas /var/lib/maas"
    before = {h.name: fleet.run(h.name, log, check=False).stdout for h in fleet.hosts}
    r = fab("backup", "--dry-run", "--inventory", str(fleet.inventory), "--backup-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    for expected in ("pg_dumpall --roles-only && pg_dump", "snap stop maas", "systemctl stop maas-regiond", "== rack4",
                     "tar --create"):
        assert expected in r.stdout
    r2 = fab("plan", "backup", "--inventory", str(fleet.inventory))
    assert r2.returncode == 0 and r2.stdout == r.stdout
    assert {h.name: fleet.run(h.name, log, check=False).stdout for h in fleet.hosts} == before
    assert not sets(tmp_path)


def test_by_dash_h_one_region_three_racks_through_the_bastion(fleet, tmp_path):
    r = fab("-S", str(fleet.ssh_config), "-H", "region1,rack1,rack2,rack3", "backup", "--backup-dir", str(tmp_path),
            "--sign-key", str(fleet.signing_key))
    assert r.returncode == 0, r.stdout + r.stderr
    [set_dir] = sets(tmp_path, "default")  # -H runs without --deployment
    assert sorted(p.name for p in set_dir.iterdir() if p.is_dir()) == ["rack1", "rack2", "rack3", "region1"]
    assert "| gzip" not in r.stdout and r.stdout.count(" ok ") == 4


@pytest.fixture
def slow_or_failing_gzip(fleet):
    """Put a gzip on rack3's PATH (under sudo) that we control; remove it afterwards."""
    def install(script: str) -> None:
        fleet.run("rack3", "cat > /usr/local/bin/gzip && chmod 755 /usr/local/bin/gzip", input=script)
    yield install
    fleet.run("rack3", "rm -f /usr/local/bin/gzip")


def test_failure_mid_archive_starts_units_again_and_keeps_set_partial(fleet, tmp_path, slow_or_failing_gzip):
    slow_or_failing_gzip("#!/bin/sh\nhead -c 1000 >/dev/null\necho 'gzip: stdout: No space left on device' >&2\n"
                         "exit 1\n")
    before = unit_states(fleet)
    r = fab("backup", "--inventory", str(fleet.inventory), "--backup-dir", str(tmp_path), "--compress", "gzip")
    assert r.returncode == PARTIAL
    assert "rack3" in r.stdout and "archive config trees" in r.stdout and "No space left" in r.stdout
    assert unit_states(fleet) == before
    [set_dir] = sets(tmp_path)
    assert set_dir.name.endswith(".partial")
    assert not list((set_dir / "rack3").glob("*.tar.gz"))  # nothing half-written looks complete
    assert (set_dir / "region1" / "manifest.json").exists()  # the others went on


def test_interrupted_backup_starts_units_again(fleet, tmp_path, slow_or_failing_gzip):
    slow_or_failing_gzip("#!/bin/sh\nsleep 30\nexec /usr/bin/gzip \"$@\"\n")
    before = unit_states(fleet)
    proc = subprocess.Popen([FAB, "backup", "--inventory", str(fleet.inventory), "--backup-dir", str(tmp_path),
                             "--compress", "gzip"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 60
    while "inactive" not in fleet.run("rack3", "systemctl is-active snap.maas.supervisor", check=False).stdout:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "INTERRUPTED" in out
    assert unit_states(fleet) == before
    assert all(s.name.endswith(".partial") for s in sets(tmp_path))


def test_two_regions_that_each_report_a_database_are_refused_naming_them(fleet, tmp_path):
    conf = "/var/snap/maas/current/regiond.conf"
    fleet.run("region2", f"cp -a {conf} /tmp/regiond.conf && sed -i 's/^database_host: .*/database_host: localhost/' "
                         f"{conf}")
    try:
        before = unit_states(fleet)
        r = fab("backup", "--inventory", str(fleet.inventory), "--backup-dir", str(tmp_path))
        assert r.returncode == 2, r.stdout + r.stderr
        assert "region1: local maasdb; region2: local maasdb" in r.stdout and "--dump-from" in r.stdout
        assert unit_states(fleet) == before and not sets(tmp_path)  # --dump-from: tests/unit/test_backup_plan.py
    finally:
        fleet.run("region2", f"cp -a /tmp/regiond.conf {conf}")
