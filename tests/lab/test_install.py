"""maasops installed as an admin would (pip into a fresh venv), run from a directory outside the checkout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from maasops import manifest as mf
from maasops.namespace import RUNBOOK
from tests.builders import samples
from tests.labtools import ROOT

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def maasops(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(installed), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_installed_command_lists_the_runbook_and_prints_help_from_anywhere(installed, tmp_path):
    where = subprocess.run([str(installed.parent / "python"), "-c", "import maasops; print(maasops.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed.parent.parent)) and not where.startswith(str(ROOT))
    r = maasops(installed, tmp_path, "--list")
    assert r.returncode == 0, r.stderr
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("  ") and line[2] != " "]
    assert listed == [*RUNBOOK, "lab.down", "lab.status", "lab.up"]
    r = maasops(installed, tmp_path, "backup", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: maasops [core options] backup [options]")
    assert "--backup-dir" in r.stdout and "--json" in r.stdout
    r = maasops(installed, tmp_path, "--print-completion-script", "bash")
    assert r.returncode == 0 and "complete -F _complete_maasops" in r.stdout
    assert list(tmp_path.iterdir()) == []  # help and lists write nothing


def test_a_json_backup_describes_the_set_on_disk(installed, lab, tmp_path):
    prom = tmp_path / "maasops.prom"
    r = maasops(installed, tmp_path, "backup", "--inventory", str(lab.inventory), "--backup-dir", "sets", "--json",
                "--metrics-file", str(prom))
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)  # stdout is the document alone
    assert "backup set:" in r.stderr and "MiB/s" not in r.stdout  # people's words on stderr, no progress
    assert (doc["operation"], doc["status"], doc["exit_code"], doc["error"]) == ("backup", "ok", 0, "")
    set_dir = Path(doc["set"])  # absolute, wherever the command ran
    assert set_dir.parent == tmp_path / "sets" / "lab" and set_dir.is_dir()
    records = mf.read_set(set_dir)
    assert records.set.complete and doc["deployment"] == records.set.deployment == "lab"
    assert set(doc["hosts"]) == set(records.set.hosts) == {h.name for h in lab.hosts if h.profile}
    for name, host in doc["hosts"].items():
        assert host["status"] == records.set.hosts[name].status == "ok", name
        assert host["size"] == sum(p.stat().st_size for p in (set_dir / name).iterdir()), name
        assert round(host["downtime"], 3) == records.hosts[name].downtime.seconds, name
        assert host["duration"] >= host["downtime"] > 0 and host["error"] == "" and host["manual"] == [], name
    got = samples(prom.read_text())
    assert got[("maasops_last_run_success", "backup", "lab")] == 1
    assert got[("maasops_last_run_bytes", "backup", "lab")] == sum(h["size"] for h in doc["hosts"].values())


def test_a_restore_naming_no_hosts_goes_to_the_hosts_the_set_records(installed, lab, tmp_path):
    """README: ``maasops restore SET`` puts the set back onto the hosts it came from: no -H, no inventory, no lab in
    the working directory; the hosts are reached through the user's ssh config (-S), by the names the set records (and
    the sudo password from Invoke's runtime config, -f)."""
    r = maasops(installed, tmp_path, "backup", "--inventory", str(lab.inventory), "--backup-dir", "sets", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    set_dir = json.loads(r.stdout)["set"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sudo = tmp_path / "sudo.yaml"  # Invoke's runtime config (-f): rack2's sudo password, which no set records
    sudo.write_text(json.dumps({"sudo": {"password": lab.sudo_password_file.read_text()}}))
    r = maasops(installed, elsewhere, "-S", str(lab.ssh_config), "-f", str(sudo), "plan", "restore", "-s", set_dir,
                "--allowed-signers", str(lab.inventory.parent / "allowed_signers"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == "planned"
    for h in lab.hosts:  # each host's remote commands, from what its probe found on it
        if h.profile:
            assert f"== {h.name} ({h.profile.split('-')[0]} " in r.stderr, (h.name, r.stderr[-2000:])
