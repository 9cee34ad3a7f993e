"""Sets in a restic repository through the real CLI, over the lab's network: the off-site repository is
restic's sftp backend to the bastion's sshd, reached with the lab's ssh_config and known_hosts."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from maasops import reposet
from maasops.lab.lab import OFFSITE_DIR
from maasops.repo import Repo
from maasops.results import PARTIAL
from tests.labtools import fab, sets

pytestmark = [pytest.mark.lab, pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed")]


def repo_args(lab, name: str) -> list[str]:
    """--inventory, --repo (a fresh repository on the bastion) and its password file."""
    return ["--inventory", str(lab.inventory), "--repo", f"sftp:bastion:{OFFSITE_DIR}/{name}",
            "--repo-password-file", str(lab.repo_password_file)]


def repo_bytes(lab, name: str) -> int:
    """What the repository holds on the bastion's disk."""
    return int(lab.run("bastion", f"du -sb {OFFSITE_DIR}/{name}").stdout.split()[0])


def listed(lab, name: str) -> list[dict]:
    r = fab("sets", *repo_args(lab, name), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)["sets"]


@pytest.fixture(scope="module")
def local_sets(lab, tmp_path_factory) -> list[Path]:
    """Three local (gzip) sets of the lab."""
    d = tmp_path_factory.mktemp("local")
    for _ in range(3):
        r = fab("backup", "--inventory", str(lab.inventory), "--backup-dir", str(d))
        assert r.returncode == 0, r.stdout + r.stderr
    return sets(d)


def offsite(lab, name: str) -> Repo:
    return Repo(f"sftp:bastion:{OFFSITE_DIR}/{name}", lab.repo_password_file, lab.ssh_config)


def image_files(lab) -> str:
    """region1's image-storage as its host lists it: name, size, mode, owner, sha256."""
    return lab.run("region1", "cd /var/lib/maas/image-storage && find . -type f -printf '%p %s %m %u ' "
                              "-exec sha256sum {} ';' | sort").stdout


def test_backup_into_the_offsite_repository_dedups_lists_verifies_and_restores(lab, tmp_path):
    args = repo_args(lab, "direct")
    r = fab("backup", *args, "--backup-dir", str(tmp_path / "local"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (tmp_path / "local").exists()  # no copy on this machine: the files streamed into restic
    first = repo_bytes(lab, "direct")
    images = image_files(lab)
    r = fab("backup", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert repo_bytes(lab, "direct") - first < first * 0.1  # uncompressed tar and SQL: chunks stored once
    [a, b] = listed(lab, "direct")
    assert (a["state"], b["state"], b["hosts"]) == ("complete", "complete", "rack1,rack2,region1")
    # region1's image-storage had not changed: the second set reuses the first's snapshot of it
    first_set, second_set = reposet.catalog(offsite(lab, "direct"))
    assert f"region1/{a['time']}" in second_set.tag("reuse").split("+")
    assert second_set.files["region1/images.tar"] == first_set.files["region1/images.tar"]
    assert "images" not in {s.tags["kind"] for s in second_set.files.values() if s.path.startswith(
        f"/lab/{b['time']}/")}
    r = fab("verify", *args, "--set", "latest")
    assert r.returncode == 0 and "OK, signed by maasops-lab" in r.stdout, r.stdout + r.stderr
    assert listed(lab, "direct")[1]["verified"] != "-"
    lab.run("region1", "rm -rf /var/lib/maas/image-storage/*")
    r = fab("restore", *args, "--set", f"lab/{b['time']}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(" ok ") >= 3
    assert image_files(lab) == images  # from the first set's snapshot, through the second's manifest


def test_prune_keeps_the_images_a_kept_set_reuses_and_a_changed_image_storage_is_sent(lab):
    args = repo_args(lab, "reused")
    for _ in range(2):
        r = fab("backup", *args)
        assert r.returncode == 0, r.stdout + r.stderr
    lab.run("region1", "f=/var/lib/maas/image-storage/$(head -c 32 /dev/urandom | sha256sum | cut -c1-64) && "
                       "head -c 1048576 /dev/urandom > $f && chown maas:maas $f")
    r = fab("backup", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    one, two, three = reposet.catalog(offsite(lab, "reused"))
    assert "region1/" in two.tag("reuse") and "region1/" not in three.tag("reuse")  # the new image was sent
    assert three.files["region1/images.tar"].path == "/" + reposet.snapshot_name("lab", three.stamp,
                                                                                  "region1/images.tar")
    r = fab("verify", *args, "--set", two.stamp)  # the verified one prune never removes
    assert r.returncode == 0, r.stdout + r.stderr
    r = fab("prune", *args, "--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [s["time"] for s in listed(lab, "reused")] == [two.stamp, three.stamp]
    kept = {s.stamp: s for s in reposet.catalog(offsite(lab, "reused"))}
    assert set(kept) == {two.stamp, three.stamp}  # the first set's images live on, not as a set
    assert kept[two.stamp].files["region1/images.tar"] == one.files["region1/images.tar"]
    r = fab("check", *args, "--read-data-subset", "100%")
    assert r.returncode == 0 and "no errors were found" in r.stdout, r.stdout + r.stderr
    r = fab("verify", *args, "--set", two.stamp)  # its images, from the snapshot the first set made
    assert r.returncode == 0, r.stdout + r.stderr


def test_push_prune_check_and_restore_plan_from_pushed_sets(lab, local_sets):
    args = repo_args(lab, "pushed")
    for s in local_sets:
        r = fab("push", str(s), *args)
        assert r.returncode == 0 and "stored" in r.stdout, r.stdout + r.stderr
    r = fab("push", str(local_sets[0]), *args)
    assert r.returncode == 0 and "already in the repository" in r.stdout
    stamps = [s.name for s in local_sets]
    assert [s["time"] for s in listed(lab, "pushed")] == stamps
    r = fab("verify", *args, "--set", stamps[0])  # the oldest is the newest that verified
    assert r.returncode == 0, r.stdout + r.stderr
    r = fab("prune", *args, "--keep-daily", "1", "--keep-weekly", "0", "--keep-monthly", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [s["time"] for s in listed(lab, "pushed")] == [stamps[0], stamps[2]]
    r = fab("check", *args, "--read-data-subset", "100%")
    assert r.returncode == 0 and "no errors were found" in r.stdout, r.stdout + r.stderr
    r = fab("restore", *args, "--set", stamps[0], "--dry-run")  # a dry run reads the whole set back
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_set_whose_bytes_differ_from_its_manifest_is_not_pushed(lab, local_sets, tmp_path):
    damaged = tmp_path / "lab" / local_sets[0].name
    shutil.copytree(local_sets[0], damaged)
    archive = next((damaged / "region1").glob("config.tar*"))
    data = bytearray(archive.read_bytes())
    data[-1] ^= 1
    archive.write_bytes(bytes(data))
    args = repo_args(lab, "damaged")
    r = fab("push", str(damaged), *args)
    assert r.returncode == 2 and "differs from its manifest" in r.stderr, r.stdout + r.stderr  # a refusal: stderr
    assert listed(lab, "damaged") == []


def test_a_dump_cut_short_never_becomes_a_snapshot_and_the_set_says_incomplete(lab, tool_on):
    for tool in ("pg_dump", "pg_dumpall"):  # which one dumps depends on what else the server holds
        tool_on("region1", tool, "#!/bin/sh\necho '-- partial'\nsleep 1\n"
                                 "echo 'pg_dump: error: connection lost' >&2\nexit 1\n")
    r = fab("backup", *repo_args(lab, "faulty"))
    assert r.returncode == PARTIAL and "connection lost" in r.stdout, r.stdout + r.stderr
    assert "INCOMPLETE" in r.stdout
    [s] = listed(lab, "faulty")
    assert s["state"] == "incomplete"
    [rs] = reposet.catalog(offsite(lab, "faulty"))
    assert "region1/maasdb.sql" not in rs.files and "rack1/config.tar" in rs.files


def exec_starts(service: Path) -> list[list[str]]:
    """The service's ExecStart= commands, as systemd would run them."""
    lines = [ln.split("=", 1)[1] for ln in service.read_text().splitlines() if ln.startswith("ExecStart=")]
    return [[a.replace("%%", "%").replace("$$", "$") for a in shlex.split(ln)] for ln in lines]


def test_the_scheduled_service_runs_backup_prune_and_check_once(lab, tmp_path):
    metrics = tmp_path / "maasops.prom"
    r = fab("schedule", "install", *repo_args(lab, "scheduled"), "--metrics-file", str(metrics),
            "--unit-dir", str(tmp_path / "units"))
    assert r.returncode == 0, r.stdout + r.stderr
    service = tmp_path / "units" / "maasops-backup-lab.service"
    runs = exec_starts(service)
    assert [run[1] for run in runs] == ["backup", "prune", "check"]
    for run in runs:
        proc = subprocess.run(run, capture_output=True, text=True, timeout=300, cwd="/")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    text = metrics.read_text()
    for op in ("backup", "prune", "check"):
        assert f'maasops_last_run_success{{operation="{op}",deployment="lab"}} 1' in text, text
    assert [s["state"] for s in listed(lab, "scheduled")] == ["complete"]
