"""The units ``schedule`` writes: quoted as systemd expands them, verified by systemd-analyze, a Vault region's
database role passed on; ``schedule install`` as root refuses a file a user can change (issue 24)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

import pytest
from invoke import Exit

from maasops import systemd_units
from maasops.namespace import SPECS, ns


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal applies to a schedule installed as root")
@pytest.mark.parametrize("how", ["owned by a user", "world-writable", "in a user's directory"])
def test_schedule_install_as_root_refuses_a_file_a_user_can_change(tmp_path, how):
    pw = tmp_path / "pw"
    pw.write_text("x")
    pw.chmod(0o600)
    home = tmp_path / "home"
    home.mkdir()
    inv = (home if how == "in a user's directory" else tmp_path) / "inventory.yaml"
    inv.write_text("deployment: prod\nhosts:\n  region1:\n    roles: [region]\n")
    if how == "owned by a user":
        os.chown(inv, 1000, 1000)
    elif how == "world-writable":
        inv.chmod(0o666)
    else:
        os.chown(home, 1000, 1000)
    spec = next(s for s in SPECS if s.name == "schedule")
    opts = spec.parse({"action": "install", "inventory": str(inv), "repo": "sftp:bastion:/srv/restic",
                       "repo_password_file": str(pw), "metrics_file": str(tmp_path / "maasops.prom"),
                       "unit_dir": str(tmp_path / "units"), "on_calendar": "daily"})
    with pytest.raises(Exit) as got:
        systemd_units.install(opts, lambda _: None)
    said = got.value.message
    user = next((u.pw_name for u in pwd.getpwall() if u.pw_uid == 1000), "1000")
    assert f"the unit would use {inv}" in said and (f"owner {user}" in said or "mode 0666" in said), said
    assert not list((tmp_path / "units").glob("*.service"))


def test_schedule_units_quote_what_systemd_would_expand(tmp_path):
    assert systemd_units.exec_arg("/a b/c%d$x") == '"/a b/c%%d$$x"'
    assert systemd_units.exec_arg("sftp:bastion:/srv/r") == "sftp:bastion:/srv/r"
    assert systemd_units.unit_name("lab@x:y") == "maasops-backup-lab_x_y"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_schedule_units_pass_systemd_analyze_verify(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x")
    pw.chmod(0o600)
    inv = tmp_path / "inventory.yaml"
    inv.write_text("deployment: prod\nhosts:\n  region1:\n    roles: [region]\n")
    opts = ns["schedule"].spec.parse({"action": "install", "inventory": str(inv), "repo": "sftp:bastion:/srv/restic",
                                      "repo_password_file": str(pw), "metrics_file": str(tmp_path / "maasops.prom"),
                                      "unit_dir": str(tmp_path / "units"), "read_data_subset": "5%",
                                      "on_calendar": "*-*-* 02:30"})
    done = systemd_units.install(opts, lambda _: None)
    proc = subprocess.run(["systemd-analyze", "verify", done["service"], done["timer"]], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--repo-password-file" in (tmp_path / "units" / "maasops-backup-prod.service").read_text()
    assert systemd_units.remove(opts, lambda _: None) == {"removed": ["maasops-backup-prod.timer"]}


def test_a_schedule_for_a_vault_region_backs_up_with_the_operators_database_role(tmp_path):
    """A Vault region's regiond.conf names no database role: the timer's backup is given the one the schedule was."""
    from maasops.namespace import SPECS
    pw = tmp_path / "db.pass"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    spec = next(s for s in SPECS if s.name == "schedule")
    opts = spec.parse({"action": "install", "repo": "sftp:bastion:/srv/restic", "database_user": "maas",
                       "database_password_file": str(pw), "max_stream_gib": "64"})
    backup, prune, check = systemd_units.commands(opts, tmp_path / "inv.yaml", tmp_path / "pw", tmp_path / "m.prom")
    assert backup[-6:] == ["--max-stream-gib", "64", "--database-user", "maas", "--database-password-file", str(pw)]
    assert "--database-user" not in prune + check and "s3cret" not in " ".join(backup)
