"""What every command shares (commands.fleet_request): the checks of options several commands take, where a
request's hosts come from (-H, --inventory, the default inventory, the set's recorded hosts, the lab) without
contacting any of them, and how an outcome is reported (the JSON document, the metrics file, the exit code)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from fabric import Connection
from invoke import Context, Exit

from maasops import backupset, connect, output
from maasops import manifest as mf
from maasops.commands import backup, fleet_request, push, restore, verify
from maasops.commands.fleet_request import FleetRequest
from maasops.options import OptionError
from maasops.results import FAILED, PARTIAL, REFUSED, REPOSITORY_LOCKED, RunResult
from tests.builders import manifest, parsed, samples

INVENTORY = "deployment: {name}\ndefaults:\n  signing_key: sign.key\n  allowed_signers: signers\nhosts:\n" \
            "  region1:\n    roles: [region]\n  rack1:\n    roles: [rack]\n    address: 10.0.0.21\n"


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No default inventory (neither $MAASOPS_INVENTORY nor ~/.config/maasops/inventory.yaml) and no ./.lab."""
    monkeypatch.delenv(fleet_request.INVENTORY_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def context(tmp_path) -> Context:
    """A Fabric context whose ssh_config knows region1 (as the user's ~/.ssh/config would)."""
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text("Host region1\n  HostName 10.9.9.9\n")
    return Context(config=connect.fabric_config(ssh_config))


def _inventory(where: Path, name: str = "prod") -> Path:
    where.mkdir(parents=True, exist_ok=True)
    inv = where / "inventory.yaml"
    inv.write_text(INVENTORY.format(name=name))
    return inv


def _request(context: Context, *hosts: str, **given) -> FleetRequest:
    conns = [Connection(h, config=context.config) for h in hosts]
    return FleetRequest(connections=conns, options=parsed(backup.SPEC, **given))


def _recorded_set(root: Path, hosts: dict[str, str]) -> Path:
    """A set whose manifests record ``hosts`` (name -> the address the backup reached)."""
    set_dir = root / "backups" / "site" / "20260101T000000Z"
    set_dir.mkdir(parents=True)
    entries = {}
    for name, address in hosts.items():
        (set_dir / name).mkdir()
        backupset.write_json(set_dir / name / mf.MANIFEST,
                             dataclasses.replace(manifest(name), address=address).to_json())
        raw = (set_dir / name / mf.MANIFEST).read_bytes()
        entries[name] = mf.HostEntry("ok", "", hashlib.sha256(raw).hexdigest(), {mf.ARCHIVE: "ab" * 32})
    sm = mf.SetManifest("site", "2026-01-01T00:00:00Z", True, mf.SetOptions(), {}, mf.DatabaseRecord(None, True),
                        entries)
    backupset.write_json(set_dir / mf.MANIFEST, sm.to_json())
    return set_dir


# --- the checks several commands share ------------------------------------------------------------------------


def test_database_credentials_go_together_and_the_password_file_is_its_owners_alone(tmp_path):
    options = backup.SPEC.options_class
    fleet_request.check_credentials(options())
    for one in ({"database_user": "maas"}, {"database_password_file": str(tmp_path / "pw")}):
        with pytest.raises(OptionError, match="^--database-user and --database-password-file go together$"):
            fleet_request.check_credentials(options(**one))
    pw = tmp_path / "pw"
    with pytest.raises(OptionError, match=f"^--database-password-file: database password file {pw}: No such file"):
        fleet_request.check_credentials(options(database_user="maas", database_password_file=str(pw)))
    pw.write_text("\n")
    pw.chmod(0o600)
    with pytest.raises(OptionError, match="^--database-password-file: .* holds no password on its first line"):
        fleet_request.check_credentials(options(database_user="maas", database_password_file=str(pw)))
    pw.write_text("s3cret\n")
    pw.chmod(0o640)
    with pytest.raises(OptionError, match="^--database-password-file: .*readable by others"):
        fleet_request.check_credentials(options(database_user="maas", database_password_file=str(pw)))
    pw.chmod(0o600)
    fleet_request.check_credentials(options(database_user="maas", database_password_file=str(pw)))
    with pytest.raises(OptionError, match="^--database-user is not a PostgreSQL role name$"):
        fleet_request.check_credentials(options(database_user="r" * 64, database_password_file=str(pw)))
    creds = fleet_request.credentials(options(database_user="maas", database_password_file=str(pw)))
    assert (creds.user, creds.password_file) == ("maas", str(pw))
    assert fleet_request.credentials(options()) is None


def test_a_set_is_named_by_a_directory_that_exists_or_by_repo(tmp_path):
    options = verify.SPEC.options_class
    with pytest.raises(OptionError, match="^which backup set\\? give SET .*or --repo REPO --set TIME|latest"):
        fleet_request.check_set_named(options())
    fleet_request.check_set_named(options(repo="/srv/restic"))  # the set in the repository: checked when opened
    fleet_request.check_set_named(options(backup_set=str(tmp_path)))
    with pytest.raises(OptionError, match="no such directory \\(a backup set is a directory"):
        fleet_request.check_set_named(options(backup_set=str(tmp_path / "gone")))


def test_a_local_set_is_a_directory_that_exists_its_name_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "set").mkdir()
    fleet_request.check_local_set(push.SPEC.options_class(backup_set="~/set"))
    with pytest.raises(OptionError, match="^~/gone: no such directory"):
        fleet_request.check_local_set(push.SPEC.options_class(backup_set="~/gone"))


# --- where the hosts come from ---------------------------------------------------------------------------------


def test_h_hosts_come_first_named_as_typed_in_deployment_default(nowhere, context):
    _inventory(nowhere / ".lab", "lab")  # a lab that is up is not used when -H is given
    req = _request(context, "region1", "ubuntu@rack1:2222")
    f = fleet_request.targets(context, req)
    assert f.name == "default" and [t.name for t in f.targets] == ["region1", "rack1"]
    assert (f.targets[1].connection.user, f.targets[1].connection.port) == ("ubuntu", 2222)
    assert f.sign_key is None and f.allowed_signers is None
    assert req.deployment == "default" and req.targets == f.targets
    assert fleet_request.targets(context, _request(context, "region1", deployment="site")).name == "site"


def test_a_jump_host_becomes_every_h_hosts_gateway(nowhere, context):
    f = fleet_request.targets(context, _request(context, "region1", "rack1", jump_host="bastion"))
    assert {t.connection.gateway.original_host for t in f.targets} == {"bastion"}


def test_h_with_an_inventory_is_refused(nowhere, context):
    req = _request(context, "region1", inventory=str(_inventory(nowhere)))
    with pytest.raises(Exit) as got:
        fleet_request.targets(context, req)
    assert got.value.code == REFUSED and got.value.message == "give hosts with -H or with --inventory, not both"


@pytest.mark.parametrize("given", [{"hosts": ["../etc"]}, {"deployment": "a/b"}])
def test_a_name_that_would_be_a_directory_of_the_set_is_refused(nowhere, context, given):
    req = _request(context, *given.pop("hosts", ["region1"]), **given)
    with pytest.raises(Exit) as got:
        fleet_request.targets(context, req)
    assert got.value.code == REFUSED and "is not a safe name" in got.value.message
    assert "it names a directory of the backup set" in got.value.message


def test_an_inventory_gives_the_deployment_its_hosts_and_its_keys(nowhere, context):
    inv = _inventory(nowhere / "site", "prod")
    f = fleet_request.targets(context, _request(context, inventory=str(inv)))
    assert f.name == "prod" and [t.name for t in f.targets] == ["region1", "rack1"]
    assert f.targets[1].connection.host == "10.0.0.21" and f.targets[1].declared.roles == ("rack",)
    assert f.sign_key == nowhere / "site" / "sign.key" and f.allowed_signers == nowhere / "site" / "signers"
    assert fleet_request.targets(context, _request(context, inventory=str(inv), deployment="other")).name == "other"


def test_the_default_inventory_is_the_environments_then_the_users(nowhere, context, monkeypatch):
    users = _inventory(nowhere / "home" / ".config" / "maasops", "users")
    assert fleet_request.default_inventory() == users
    assert fleet_request.targets(context, _request(context)).name == "users"
    monkeypatch.setenv(fleet_request.INVENTORY_ENV, str(_inventory(nowhere / "env", "envs")))
    assert fleet_request.targets(context, _request(context)).name == "envs"


def test_lab_dir_wins_over_the_default_inventory(nowhere, context, monkeypatch):
    monkeypatch.setenv(fleet_request.INVENTORY_ENV, str(_inventory(nowhere / "env", "envs")))
    _inventory(nowhere / "mylab", "lab")
    assert fleet_request.targets(context, _request(context, lab_dir=str(nowhere / "mylab"))).name == "lab"


def test_without_hosts_or_inventory_the_lab_in_dot_lab_is_used(nowhere, context):
    _inventory(nowhere / ".lab", "lab")
    assert fleet_request.targets(context, _request(context)).name == "lab"


def test_no_hosts_at_all_is_refused_saying_how_to_give_them(nowhere, context):
    with pytest.raises(Exit) as got:
        fleet_request.targets(context, _request(context))
    assert got.value.code == REFUSED and got.value.message.startswith("No hosts: give -H host1,host2, --inventory")


def test_an_inventory_that_does_not_load_is_refused(nowhere, context):
    bad = nowhere / "bad.yaml"
    bad.write_text("deployment: prod\n")
    with pytest.raises(Exit) as got:
        fleet_request.targets(context, _request(context, inventory=str(bad)))
    assert got.value.code == REFUSED and got.value.message == f"{bad}:1: missing 'hosts'"


def test_a_restore_without_hosts_goes_to_the_hosts_its_set_records(nowhere, context):
    set_dir = _recorded_set(nowhere, {"region1": "10.0.0.11", "rack1": "10.0.0.21"})
    req = FleetRequest(options=parsed(restore.SPEC, backup_set=str(set_dir)))
    f = fleet_request.targets(context, req, set_dir)
    assert f.name == "site"
    by_name = {t.name: t.connection for t in f.targets}
    assert by_name["region1"].host == "10.9.9.9"  # the user's ssh_config knows region1: reached by its name
    assert by_name["rack1"].host == "10.0.0.21"  # unknown there: at the address the backup reached


def test_a_set_does_not_outrank_an_inventory_or_a_lab_dir(nowhere, context):
    set_dir = _recorded_set(nowhere, {"region1": "10.0.0.11"})
    inv = _inventory(nowhere / "site", "prod")
    _inventory(nowhere / "mylab", "lab")
    for given, name in (({"inventory": str(inv)}, "prod"), ({"lab_dir": str(nowhere / "mylab")}, "lab")):
        req = FleetRequest(options=parsed(restore.SPEC, backup_set=str(set_dir), **given))
        assert fleet_request.targets(context, req, set_dir).name == name


def test_a_set_that_cannot_say_where_its_hosts_are_is_refused(nowhere, context):
    cases = {"unreadable": nowhere / "empty",
             "bad address": _recorded_set(nowhere / "a", {"region1": "10.0.0.11", "rack1": "x;reboot"}),
             "no host": _recorded_set(nowhere / "b", {})}
    cases["unreadable"].mkdir()
    said = {}
    for what, set_dir in cases.items():
        req = FleetRequest(options=parsed(restore.SPEC, backup_set=str(set_dir)))
        with pytest.raises(Exit) as got:
            fleet_request.targets(context, req, set_dir)
        assert got.value.code == REFUSED
        said[what] = got.value.message
    assert "the set cannot say which hosts it came from" in said["unreadable"]
    assert "host rack1 is recorded at 'x;reboot', not a host name or address" in said["bad address"]
    assert "the set records no host that was backed up; give -H or --inventory" in said["no host"]


def test_deployment_of_is_the_flag_else_the_inventorys(nowhere):
    inv = _inventory(nowhere / "site", "prod")
    options = verify.SPEC.options_class
    assert fleet_request.deployment_of(options(deployment="x", inventory=str(inv))) == "x"
    assert fleet_request.deployment_of(options(inventory=str(inv))) == "prod"
    assert fleet_request.deployment_of(options()) is None


# --- how an outcome is reported --------------------------------------------------------------------------------


def test_emit_result_prints_the_json_document_and_writes_the_metrics_file(capsys, tmp_path):
    prom = tmp_path / "maasops.prom"
    opts = parsed(backup.SPEC, json=True, metrics_file=str(prom))
    fleet_request.emit_result(RunResult("backup", PARTIAL, error="rack1 failed"), output.Output(True), opts, "prod")
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert (doc["operation"], doc["status"], doc["exit_code"], doc["error"]) == ("backup", "partial", 3, "rack1 failed")
    assert err == ""
    got = samples(prom.read_text())
    assert got["maasops_last_run_exit_code", "backup", "prod"] == PARTIAL


def test_emit_result_gives_restics_code_where_restic_said_why(capsys):
    result = RunResult("prune", FAILED, error="restic forget on /srv/r failed: repository is already locked by PID 1")
    fleet_request.emit_result(result, output.Output(True), parsed(backup.SPEC, json=True))
    assert result.code == REPOSITORY_LOCKED and json.loads(capsys.readouterr().out)["exit_code"] == REPOSITORY_LOCKED


def test_text_mode_prints_no_document(capsys, tmp_path):
    out = output.Output()
    fleet_request.emit_result(RunResult("backup", 0), out, parsed(backup.SPEC))
    assert capsys.readouterr().out == "" and out.emitted


def test_a_metrics_file_that_cannot_be_written_ends_the_run_naming_the_flag(capsys, tmp_path):
    where = tmp_path / "dir"
    opts = parsed(backup.SPEC, metrics_file=str(where))
    where.mkdir()  # the option was checked when parsed; the file cannot be written now
    with pytest.raises(Exit) as got:
        fleet_request.emit_result(RunResult("backup", 0), output.Output(), opts)
    assert got.value.code == FAILED and got.value.message.startswith(f"--metrics-file {where}: cannot be written")
    with pytest.raises(Exit) as got:
        fleet_request.emit_result(RunResult("backup", PARTIAL), output.Output(), opts)
    assert got.value.code == PARTIAL


def test_finish_exits_with_the_results_code_after_reporting_it(capsys, tmp_path):
    prom = tmp_path / "m.prom"
    opts = parsed(backup.SPEC, json=True, metrics_file=str(prom))
    fleet_request.finish(RunResult("backup", 0), output.Output(True), opts, "prod")  # ok: no exit
    assert json.loads(capsys.readouterr().out)["status"] == "ok"
    with pytest.raises(Exit) as got:
        fleet_request.finish(RunResult("backup", FAILED, error="region1: no space"), output.Output(True), opts, "prod")
    assert got.value.code == FAILED
    out, err = capsys.readouterr()
    assert json.loads(out)["error"] == "region1: no space" and err == "maasops backup: region1: no space\n"
    assert samples(prom.read_text())["maasops_last_run_exit_code", "backup", "prod"] == FAILED


def test_a_refusal_before_any_result_is_still_reported(capsys, tmp_path):
    opts = parsed(backup.SPEC, json=True)
    with pytest.raises(Exit) as got, fleet_request.always_reported("backup", output.Output(True), opts, lambda: "p"):
        raise Exit("No hosts", code=REFUSED)
    assert got.value.code == REFUSED
    doc = json.loads(capsys.readouterr().out)
    assert (doc["status"], doc["error"]) == ("refused", "No hosts")
