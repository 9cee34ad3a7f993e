"""The typed records read back from a set's directory: the set manifest's ``options`` and a restore's record
(``restore-<run>.json``). Both are untrusted input: each malformed field is refused naming the file and the
field, a link is never followed. Unit tests, no lab."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from maasops import backup, restore, rollback
from maasops import manifest as mf
from maasops.backup_plan import BackupOptions
from maasops.parts.database import Credentials
from maasops.results import OK, HostResult, RunResult

RUN = "20260102T030405Z"


# --- the set manifest's options -----------------------------------------------------------------------------------


def _set_json(options: object = None, drop: bool = False) -> dict:
    sm = mf.SetManifest("lab", "2026-01-01T00:00:00Z", True, mf.SetOptions(), {}, mf.DatabaseRecord(None, True), {})
    data = sm.to_json()
    if drop:
        data.pop("options")
    elif options is not None:
        data["options"] = options
    return data


def test_the_options_a_backup_records_are_the_json_it_always_wrote_and_read_back_typed(tmp_path):
    chosen = BackupOptions(stop_postgresql=True, compress="zstd", encrypt_to="age1xyz", database_name="maasdb",
                           credentials=Credentials("backup", str(tmp_path / "pw")), database_elsewhere=True,
                           dump_format="directory", max_stream_gib=64)
    recorded = backup._recorded(chosen)
    data = _set_json(asdict(recorded))
    assert data["options"] == asdict(chosen)  # the bytes on disk are what a set always held
    read = mf.parse_set(json.loads(json.dumps(data)), mf.MANIFEST).options
    assert read == recorded
    assert read.credentials == mf.OperatorLogin("backup", str(tmp_path / "pw")) and read.max_stream_gib == 64


@pytest.mark.parametrize("options", [{}, None], ids=["empty", "absent"])
def test_a_set_that_recorded_no_options_reads_as_every_default(options):
    assert mf.parse_set(_set_json(options, drop=options is None), mf.MANIFEST).options == mf.SetOptions()


def test_the_options_an_older_maasops_recorded_read_with_the_rest_defaulted():
    older = {"stop_postgresql": False, "exclude_images": True, "db_only_maas": False, "allow_vault": False,
             "compress": "gzip"}  # the first sets' options: no encryption, dump format, stream ceiling yet
    read = mf.parse_set(_set_json(older), mf.MANIFEST).options
    assert read == mf.SetOptions(exclude_images=True, compress="gzip")


def test_options_this_maasops_does_not_know_are_left_unread_as_in_every_record():
    assert mf.parse_set(_set_json({"a_later_option": [1]}), mf.MANIFEST).options == mf.SetOptions()


@pytest.mark.parametrize("key,value,says", [
    ("stop_postgresql", "yes", "options: stop_postgresql is a str, not a bool"),
    ("exclude_images", 1, "options: exclude_images is a int, not a bool"),
    ("db_only_maas", [], "options: db_only_maas is a list, not a bool"),
    ("allow_vault", "false", "options: allow_vault is a str, not a bool"),
    ("compress", 3, "options: compress is a int, not a str"),
    ("encrypt_to", ["age1"], "options: encrypt_to is a list, not a str"),
    ("database_name", True, "options: database_name is a bool, not a str"),
    ("credentials", "backup:pw", "options: credentials is a str, not a dict"),
    ("credentials", {"user": "backup"}, "options: credentials: password_file is missing"),
    ("credentials", {"user": 5, "password_file": "/pw"}, "options: credentials: user is a int, not a str"),
    ("database_elsewhere", "no", "options: database_elsewhere is a str, not a bool"),
    ("dump_format", {"x": 1}, "options: dump_format is a dict, not a str"),
    ("max_stream_gib", "64", "options: max_stream_gib is a str, not a int"),
    ("max_stream_gib", -1, "options: max_stream_gib is negative"),
    ("max_stream_gib", True, "options: max_stream_gib is a bool, not a int"),
])
def test_each_malformed_option_is_refused_naming_the_file_and_the_field(key, value, says):
    with pytest.raises(mf.ManifestError) as got:
        mf.parse_set(_set_json({key: value}), mf.MANIFEST)
    assert str(got.value) == f"{mf.MANIFEST}: {says}"


def test_options_that_are_not_an_object_are_refused():
    with pytest.raises(mf.ManifestError, match=r"manifest.json: options is a list, not a dict"):
        mf.parse_set(_set_json(["stop_postgresql"]), mf.MANIFEST)


# --- a restore's record -------------------------------------------------------------------------------------------


def _result(tmp_path: Path) -> RunResult:
    """A finished restore's result as maasops.restore builds it: two targets, steps, an older run pruned."""
    step = {"id": "upload-archive", "name": "upload config.tar", "phase": "upload", "key": "", "undo": False,
            "started": 10.0, "ended": 12.5}
    hosts = {"dr-region": HostResult("dr-region", "ok", "region1", duration=4.2, downtime=2.0),
             "dr-rack": HostResult("dr-rack", "SERVICES DOWN", "rack1", duration=3.0, error="x",
                                   manual=["systemctl start maas-rackd"])}
    details = {"run_id": RUN, "started": 9.0, "ended": 20.0, "database_loaded_on": "dr-region",
               "dbupgrade_on": "dr-region", "secret_from": "region1", "failed_phase": None,
               "steps": {"dr-region": [step], "dr-rack": [{**step, "undo": True}]},
               "pruned": {"dr-rack": ["removed run 20250101T000000Z"]}, "dbupgrade_runs": 1}
    return RunResult("restore", OK, hosts, tmp_path, details=details)


def _running() -> dict:
    """The record as maasops wrote it before the restore touched anything (before issue 26)."""
    return {"status": "running", "run_id": RUN, "set": "/b/lab/20260101T000000Z", "started": 9.0,
            "hosts": {"dr-region": {"source": "region1"}}}


def test_a_finished_restore_is_recorded_as_its_json_result_and_read_back_typed(tmp_path):
    result = _result(tmp_path)
    path = mf.write_restore(tmp_path, restore._record(result))
    assert path == tmp_path / f"restore-{RUN}.json" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text()) == {**result.to_json(), "status": result.status}  # the file as it was
    rec = mf.read_restore(tmp_path, path.name)
    assert rec == restore._record(result)
    assert rec.hosts["dr-rack"].source == "rack1" and rec.hosts["dr-rack"].manual == ("systemctl start maas-rackd",)
    assert rec.steps["dr-region"][0].phase == "upload" and rec.steps["dr-region"][0].ended == 12.5
    assert rec.secret_from == "region1" and rec.database_loaded_on == "dr-region" and rec.dbupgrade_runs == 1


def test_a_running_restore_record_reads_whether_this_or_an_older_maasops_wrote_it(tmp_path):
    (tmp_path / f"restore-{RUN}.json").write_text(json.dumps(_running()))
    older = mf.read_restore(tmp_path, f"restore-{RUN}.json")
    assert older.status == mf.RUNNING and older.hosts == {"dr-region": mf.RestoredHost("dr-region", "running",
                                                                                        "region1")}
    mf.write_restore(tmp_path, older)
    assert mf.read_restore(tmp_path, f"restore-{RUN}.json") == older


@pytest.mark.parametrize("edit,says", [
    (lambda d: d.pop("run_id"), "run_id is missing"),
    (lambda d: d.update(run_id="../../etc"), "run_id '../../etc' is not a restore run's time"),
    (lambda d: d.update(run_id=20260102), "run_id is a int, not a str"),
    (lambda d: d.pop("status"), "status is missing"),
    (lambda d: d.update(set=["/b"]), "set is a list, not a str"),
    (lambda d: d.update(started="9"), "started is a str, not a int"),
    (lambda d: d.update(ended=True), "ended is a bool, not a int"),
    (lambda d: d.update(exit_code=-1), "exit_code is negative"),
    (lambda d: d.pop("hosts"), "hosts is missing"),
    (lambda d: d.update(hosts=[]), "hosts is a list, not a dict"),
    (lambda d: d.update(hosts={"../x": {"source": "region1"}}), "hosts has target '../x' is not a safe name"),
    (lambda d: d.update(hosts={"dr-region": "region1"}), "hosts: dr-region is a str, not a dict"),
    (lambda d: d["hosts"]["dr-region"].pop("source"), "hosts: dr-region: source is missing"),
    (lambda d: d["hosts"]["dr-region"].update(source="a/b"), "hosts: dr-region: source 'a/b' is not a safe name"),
    (lambda d: d["hosts"]["dr-region"].update(host="other"), "hosts: dr-region: says host 'other'"),
    (lambda d: d["hosts"]["dr-region"].update(downtime="2s"), "hosts: dr-region: downtime is a str, not a int"),
    (lambda d: d["hosts"]["dr-region"].update(manual="rm -rf /"), "hosts: dr-region: manual is a str, not a list"),
    (lambda d: d["hosts"]["dr-region"].update(manual=[1]), "hosts: dr-region: manual must be a list of strings"),
    (lambda d: d.update(database_loaded_on="elsewhere"), "database_loaded_on 'elsewhere' is not a target"),
    (lambda d: d.update(dbupgrade_on=1), "dbupgrade_on is a int, not a str"),
    (lambda d: d.update(secret_from=".."), "secret_from '..' is not a safe name"),
    (lambda d: d.update(failed_phase=2), "failed_phase is a int, not a str"),
    (lambda d: d.update(steps={"dr-region": {}}), "steps: dr-region is a dict, not a list"),
    (lambda d: d.update(steps={"dr-region": [{"id": "x"}]}), "steps: dr-region[0]: name is missing"),
    (lambda d: d.update(steps={"dr-region": [{"id": "x", "name": "n", "phase": "upload", "key": "",
                                              "undo": False, "started": 1, "ended": "2"}]}),
     "steps: dr-region[0]: ended is a str, not a int"),
    (lambda d: d.update(pruned={"dr-region": "all"}), "pruned: dr-region is a str, not a list"),
    (lambda d: d.update(dbupgrade_runs=1.5), "dbupgrade_runs is a float, not a int"),
])
def test_each_malformed_field_of_a_restore_record_is_refused_naming_the_file(tmp_path, edit, says):
    data = _running()
    edit(data)
    name = f"restore-{RUN}.json"
    (tmp_path / name).write_text(json.dumps(data))
    with pytest.raises(mf.ManifestError) as got:
        mf.read_restore(tmp_path, name)
    assert str(got.value).startswith(f"{name}: ") and says in str(got.value), str(got.value)


@pytest.mark.parametrize("content", ["[]", "{not json", ""])
def test_a_restore_record_that_is_no_json_object_is_refused(tmp_path, content):
    (tmp_path / f"restore-{RUN}.json").write_text(content)
    with pytest.raises(mf.ManifestError, match=f"restore-{RUN}.json: "):
        mf.read_restore(tmp_path, f"restore-{RUN}.json")


def test_a_restore_record_that_is_a_link_is_refused_never_followed(tmp_path):
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps(_running()))
    (tmp_path / f"restore-{RUN}.json").symlink_to(real)
    with pytest.raises(mf.ManifestError, match=f"restore-{RUN}.json.*symbolic link"):
        mf.read_restore(tmp_path, f"restore-{RUN}.json")
    with pytest.raises(mf.ManifestError, match="symbolic link"):
        rollback.last_restore(tmp_path)


def test_a_restore_record_that_is_a_fifo_or_a_directory_is_refused(tmp_path):
    os.mkfifo(tmp_path / f"restore-{RUN}.json")
    with pytest.raises(mf.ManifestError, match=f"restore-{RUN}.json.*not a regular file"):
        mf.read_restore(tmp_path, f"restore-{RUN}.json")


def test_only_a_restore_record_s_own_name_is_read(tmp_path):
    with pytest.raises(mf.ManifestError, match="not a restore record's name"):
        mf.read_restore(tmp_path, "../manifest.json")


def test_rollback_reads_the_last_record_and_refuses_a_malformed_one_naming_it(tmp_path):
    assert rollback.last_restore(tmp_path) is None
    (tmp_path / f"restore-{RUN}.json").write_text(json.dumps(_running()))
    assert rollback.last_restore(tmp_path).run_id == RUN
    later = "20260102T030406Z"
    (tmp_path / f"restore-{later}.json").write_text(json.dumps({**_running(), "run_id": later, "hosts": {}}))
    assert rollback.last_restore(tmp_path).run_id == later
    (tmp_path / f"restore-{later}.json").write_text(json.dumps({**_running(), "run_id": later, "started": "now"}))
    refusal = rollback.run(tmp_path, [], say=lambda _: None)
    assert refusal.code == 2 and f"restore-{later}.json: started is a str" in refusal.error, refusal.error


def test_a_record_whose_name_and_run_disagree_is_refused(tmp_path):
    other = "20260102T030406Z"
    (tmp_path / f"restore-{RUN}.json").write_text(json.dumps({**_running(), "run_id": other}))
    with pytest.raises(mf.ManifestError, match=f"restore-{RUN}.json: holds the record of run '{other}'"):
        mf.read_restore(tmp_path, f"restore-{RUN}.json")


def test_rollback_from_a_set_path_that_is_a_link_is_refused_as_restore_refuses_it(tmp_path):
    real = tmp_path / "set"
    real.mkdir()
    (real / f"restore-{RUN}.json").write_text(json.dumps(_running()))
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(mf.ManifestError, match="link is a symbolic link: give the set's own directory"):
        rollback.last_restore(tmp_path / "link")
    assert rollback.last_restore(real).run_id == RUN
