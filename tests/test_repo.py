"""The restic wrapper and the repository's sets, on a local repository (no lab): restic itself, for real."""

from __future__ import annotations

import io
import shutil
import subprocess

import pytest

from maasops import pipes, reposet, retention, systemd_units
from maasops import repo as restic
from maasops.namespace import ns
from maasops.repo import Repo, RepoError
from maasops.reposet import RepoSet, Snapshot

needs_restic = pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed")


@pytest.fixture
def local_repo(tmp_path) -> Repo:
    pw = tmp_path / "pw"
    pw.write_text("not-a-real-secret\n")
    pw.chmod(0o600)
    repo = Repo(str(tmp_path / "repo"), pw)
    assert restic.ensure(repo) == restic.FORMAT
    return repo


@needs_restic
def test_a_closed_sink_is_a_snapshot_with_its_tags_and_dump_streams_the_same_bytes(local_repo):
    data = bytes(range(256)) * 5000
    sink = reposet.file_sink(local_repo, "dep", "20260101T000000Z", "region1", "config.tar", "3.5.1")
    sink.write(data[:1000])
    sink.write(data[1000:])
    assert sink.close() == (__import__("hashlib").sha256(data).hexdigest(), len(data))
    [rs] = reposet.catalog(local_repo)
    assert (rs.deployment, rs.stamp, list(rs.files)) == ("dep", "20260101T000000Z", ["region1/config.tar"])
    snap = rs.files["region1/config.tar"]
    assert snap.tags["kind"] == "archive" and snap.tags["maas"] == "3.5.1" and snap.tags["host"] == "region1"
    files = reposet.RepoFiles(local_repo, rs)
    assert files.size("region1/config.tar") == len(data) and files.size("region1/nothing") is None
    with files.open("region1/config.tar") as src:
        assert src.read() == data


@needs_restic
def test_an_aborted_sink_makes_no_snapshot(local_repo):
    sink = reposet.file_sink(local_repo, "dep", "20260101T000000Z", "region1", "maasdb.sql", "3.5.1")
    sink.write(b"half of a dump\n" * 1000)
    sink.abort()
    assert reposet.catalog(local_repo) == []
    assert restic.run_json(local_repo, "snapshots") == []


@needs_restic
def test_a_dump_cut_short_by_the_reader_leaves_no_lock(local_repo):
    sink = reposet.file_sink(local_repo, "dep", "20260101T000000Z", "r", "config.tar", "3.5.1")
    sink.write(b"x" * (8 << 20))
    sink.close()
    [rs] = reposet.catalog(local_repo)
    with reposet.RepoFiles(local_repo, rs).open("r/config.tar") as src:
        src.read(10)
    restic.run(local_repo, "check")  # an exclusive lock: no lock of the interrupted dump is in the way


def test_the_password_comes_only_from_a_private_file(tmp_path, monkeypatch):
    monkeypatch.delenv("RESTIC_PASSWORD_FILE", raising=False)
    with pytest.raises(RepoError, match="--repo-password-file"):
        restic.password_file(None)
    pw = tmp_path / "pw"
    pw.write_text("x")
    pw.chmod(0o644)
    with pytest.raises(RepoError, match="readable by others"):
        restic.password_file(pw)
    pw.chmod(0o600)
    monkeypatch.setenv("RESTIC_PASSWORD_FILE", str(pw))
    assert restic.password_file(None) == pw
    monkeypatch.setenv("RESTIC_PASSWORD", "leaked")
    env = Repo("/r", pw).env()
    assert "RESTIC_PASSWORD" not in env and env["RESTIC_PASSWORD_FILE"] == str(pw) and env["TZ"] == "UTC"


def test_sftp_goes_through_the_fleets_ssh_config_and_hostile_locations_are_refused(tmp_path):
    cfg = tmp_path / "ssh_config"
    args = Repo("sftp:backup@bastion:/srv/restic", tmp_path / "pw", cfg).command("snapshots")
    option = args[args.index("-o") + 1]
    assert option == f"sftp.command=ssh -o BatchMode=yes -F {cfg} -l backup bastion -s sftp"
    assert "--password" not in " ".join(args)
    for bad in ("sftp:-oProxyCommand=touch /tmp/x:/srv", "sftp:host", "sftp://-p/x"):
        with pytest.raises(RepoError):
            Repo(bad, tmp_path / "pw").command()
    with pytest.raises(RepoError):
        restic.open_repo("--insecure-tls", None)


def _set(dep: str, stamp: str, state: str | None, verified: str = "") -> RepoSet:
    tags = {"state": state, "verified": verified} if state else {}
    return RepoSet(dep, stamp, Snapshot(f"id-{dep}-{stamp}", "", tags) if state else None)


def test_latest_is_the_newest_complete_set_and_a_set_names_its_deployment():
    sets = [_set("a", "20260101T000000Z", "complete"), _set("a", "20260102T000000Z", "incomplete"),
            _set("b", "20260103T000000Z", "complete")]
    assert reposet.find(sets, "a/latest").stamp == "20260101T000000Z"
    assert reposet.find(sets, "20260103T000000Z", "b").deployment == "b"
    with pytest.raises(RepoError, match="sets of a, b"):
        reposet.find(sets, "latest")
    with pytest.raises(RepoError, match="has no set"):
        reposet.find(sets, "a/20990101T000000Z")


def test_prune_never_removes_the_newest_verified_set_and_drops_stale_incomplete_ones():
    sets = [_set("a", "20260101T000000Z", "complete", verified="20260101T010000Z"),
            _set("a", "20260102T000000Z", "incomplete"), _set("a", "20260103T000000Z", "complete"),
            _set("a", "20260104T000000Z", None)]  # unfinished: may still be running
    verdict = {"id-a-20260101T000000Z": "", "id-a-20260103T000000Z": "daily snapshot"}
    keep = {d.set.stamp: d.keep for d in retention.decide(sets, verdict)}
    assert keep == {"20260101T000000Z": True, "20260102T000000Z": False, "20260103T000000Z": True,
                    "20260104T000000Z": True}
    with pytest.raises(RepoError):
        retention.RetentionPolicy(0, 0, 0).args()


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


def test_read_ahead_gives_every_byte_in_order_and_stops_when_closed_early():
    data = bytes(range(256)) * 40000  # ~10 MiB: more than it may hold ahead
    ahead = pipes.ReadAhead(io.BytesIO(data), 2)
    got = ahead.read(7) + ahead.read(3 << 20) + ahead.read()
    assert got == data and ahead.read(1) == b""
    ahead.close()
    early = pipes.ReadAhead(io.BytesIO(data), 1)
    assert early.read(10) == data[:10]
    early.close()  # its thread was blocked handing over the next block: it stops all the same


def test_read_ahead_raises_what_the_source_raised():
    class Broken(io.RawIOBase):
        def read(self, n=-1):
            raise OSError("disk gone")
    ahead = pipes.ReadAhead(Broken(), 2)
    with pytest.raises(OSError, match="disk gone"):
        ahead.read(1)
    ahead.close()


def test_sftp_prefers_aes_gcm_only_where_the_users_ssh_config_leaves_the_ciphers_alone(tmp_path):
    plain, chosen = tmp_path / "plain", tmp_path / "chosen"
    plain.write_text("Host offsite\n  HostName 127.0.0.1\n")
    chosen.write_text("Host offsite\n  HostName 127.0.0.1\n  Ciphers chacha20-poly1305@openssh.com\n")
    pw = tmp_path / "pw"
    assert "Ciphers=^aes128-gcm@openssh.com" in " ".join(Repo("sftp:offsite:/r", pw, plain).command("snapshots"))
    assert "Ciphers" not in " ".join(Repo("sftp:offsite:/r", pw, chosen).command("snapshots"))


@pytest.mark.parametrize(("out", "version", "parallel", "ahead", "dirs"), [
    ("restic 0.14.0 compiled with go1.19.8 on linux/amd64\n", (0, 14, 0), False, 64, True),
    ("restic 0.16.4 compiled with go1.22.2 on linux/amd64\n", (0, 16, 4), False, 64, True),
    ("restic 0.17.3 compiled with go1.23.3 on linux/amd64\n", (0, 17, 3), True, 8, True),
    ("restic 0.18.0 compiled with go1.24.4 on linux/amd64\n", (0, 18, 0), True, 8, False),
    ("restic 0.18.1 compiled with go1.25.1 on linux/amd64\n", (0, 18, 1), True, 8, True),
])
def test_the_restic_version_chooses_the_restore_path_and_the_snapshot_names(out, version, parallel, ahead, dirs):
    paths = restic.Paths(restic.parse_version(out))
    assert (paths.version, paths.parallel_dump, paths.ahead_blocks, paths.stdin_dirs) == (version, parallel, ahead,
                                                                                            dirs)
    said = paths.describe()
    assert said.startswith(f"restic {'.'.join(map(str, version))}: ")
    assert ("parallel restic dump" in said) == parallel and ("named flat" in said) == (not dirs)


@pytest.mark.parametrize("out", ["", "rustic 0.18.0\n", "restic version unknown\n", "restic 0.x.1\n",
                                 "fatal: command not found\nrestic 0.18.0\n", "restic 99999.1.1\n"])
def test_a_version_answer_that_is_not_restics_is_refused(out):
    with pytest.raises(RepoError, match="not a restic maasops knows"):
        restic.parse_version(out)


def test_a_missing_or_unknown_restic_is_said_not_raised_by_version_output(monkeypatch):
    monkeypatch.setattr(restic, "RESTIC", "/nonexistent/restic")
    restic.restic_version.cache_clear()
    try:
        assert restic.describe_installed().startswith("restic: restic cannot run")
    finally:
        restic.restic_version.cache_clear()


@needs_restic
def test_a_set_is_named_as_the_installed_restic_can_and_reads_back(local_repo):
    sink = reposet.file_sink(local_repo, "dep", "20260101T000000Z", "region1", "config.tar", "3.5.1")
    sink.write(b"config")
    sink.close()
    [rs] = reposet.catalog(local_repo)
    sep = "/" if restic.paths().stdin_dirs else "+"
    assert rs.files["region1/config.tar"].path == f"/dep{sep}20260101T000000Z{sep}region1{sep}config.tar"
    with reposet.RepoFiles(local_repo, rs).open("region1/config.tar") as src:
        assert src.read() == b"config"


@pytest.mark.parametrize("version", [(0, 17, 3), (0, 18, 0)])
def test_the_catalog_reads_sets_named_by_either_restic(monkeypatch, version):
    monkeypatch.setattr(restic, "paths", lambda: restic.Paths(version))
    stamp = "20260101T000000Z"

    def snap(i, rel, kind):
        tags = [restic.TAG, "deployment=dep", f"set={stamp}", f"kind={kind}", "state=complete"]
        return {"id": f"id{i}", "paths": ["/" + reposet.snapshot_name("dep", stamp, rel)], "tags": tags}
    monkeypatch.setattr(restic, "run_json", lambda *a, **k: [
        snap(1, "region1/config.tar", "archive"), snap(2, "region1/images.tar", "images"),
        snap(3, reposet.MANIFESTS, "manifests"),
        {**snap(4, "x", "dump"), "paths": [f"/other/{stamp}/region1/maasdb.sql"]}])
    [rs] = reposet.catalog(None)
    assert sorted(rs.files) == ["region1/config.tar", "region1/images.tar"] and rs.manifests.id == "id3"


@needs_restic
def test_check_says_which_restic_and_restore_path_it_uses(local_repo):
    said = []
    result = retention.check(local_repo, None, said.append)
    assert result.code == 0 and said[-1] == restic.paths().describe()
    assert result.details["restic_paths"].startswith(f"restic {restic.dotted(restic.restic_version())}: restore from")


def test_version_output_names_the_restic_and_its_restore_path(capsys):
    from maasops.program import program
    program.run(["maasops", "--version"], exit=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("maasops ")
    assert lines[-1] == restic.describe_installed() and "restore from a repository by" in lines[-1]


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
