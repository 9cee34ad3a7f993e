"""Host text reaches the operator with its escape codes shown, never run; secrets' files are private (issue 24)."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pyrage
import pytest
from invoke import Exit

from maasops import crypto, fleet, hosttext, output, systemd_units
from maasops.connect import fabric_config
from maasops.errors import RemoteError
from maasops.inventory import Deployment, InventoryError, InventoryHost
from maasops.namespace import SPECS

HOSTILE = "ok\x1b]0;pwned\x07\x1b[2J\r\x9b31mred\x00"
SHOWN = "ok\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x9b31mred\\x00"


def test_control_characters_but_newline_and_tab_are_shown_as_escapes():
    assert hosttext.clean(HOSTILE) == SHOWN
    assert hosttext.clean("a\tb\nc é") == "a\tb\nc é"
    assert hosttext.clean_data({"k\x1b": [HOSTILE, 1, None]}) == {"k\\x1b": [SHOWN, 1, None]}


def test_host_text_is_escaped_in_errors_tables_lines_and_json(capsys):
    err = RemoteError("region1", "probe", f"sudo said: {HOSTILE}", "hint")
    assert SHOWN in str(err) and "\x1b" not in str(err)
    assert "\x1b" not in output.table([{"host": "r", "value": HOSTILE}]) and SHOWN in output.table([{"v": HOSTILE}])
    out = output.Output(json_mode=True)
    out.say(HOSTILE)
    out.emit({"error": HOSTILE, "path": Path("/x")})
    got = capsys.readouterr()
    assert got.err.strip() == SHOWN
    assert json.loads(got.out) == {"error": SHOWN, "path": "/x"}
    output.Output().say(HOSTILE)
    assert capsys.readouterr().out.strip() == SHOWN


def test_an_identity_others_can_read_is_refused_naming_the_file_and_mode(tmp_path):
    key = tmp_path / "key.txt"
    key.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    key.chmod(0o644)
    with pytest.raises(crypto.CryptoError, match=r"key.txt is readable by others \(mode 0644\)"):
        crypto.identities(key)
    key.chmod(0o600)
    assert len(crypto.identities(key)) == 1


def test_a_sudo_password_file_others_can_read_is_refused_naming_the_file_and_mode(tmp_path):
    pw = tmp_path / "sudo_password"
    pw.write_text("secret\n")
    pw.chmod(0o640)
    dep = Deployment("d", (InventoryHost("region1", ("region",), "10.0.0.1", sudo_password_file=pw),))
    with pytest.raises(InventoryError, match=r"region1: sudo password file .*sudo_password is readable by others "
                                             r"\(mode 0640\)"):
        fleet.from_deployment(dep, fabric_config())
    pw.chmod(0o600)
    [t] = fleet.from_deployment(dep, fabric_config())
    assert t.connection.config.sudo.password == "secret"


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
