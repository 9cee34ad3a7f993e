"""The restic wrapper on a local repository (no lab): restic itself, for real; which restic gets what."""

from __future__ import annotations

import shutil

import pytest

from maasops import repo as restic
from maasops import reposet, retention
from maasops.repo import Repo, RepoError

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


