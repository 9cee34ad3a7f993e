"""``maasops restore``'s parse-time check (commands.restore.check_restore): a set is named, and what it would write
onto the hosts is refused before anything runs, each refusal naming its flag."""

from __future__ import annotations

import pytest

from maasops.commands import restore
from maasops.options import OptionError
from tests.builders import parsed


@pytest.fixture
def set_dir(tmp_path) -> str:
    d = tmp_path / "backups" / "lab" / "20260101T000000Z"
    d.mkdir(parents=True)
    return str(d)


def test_a_restore_of_a_set_that_is_there_passes(set_dir):
    opts = parsed(restore.SPEC, backup_set=set_dir)
    assert opts.backup_set == set_dir
    options = restore.restore_options(opts)
    assert options.rollback_copy and options.credentials is None and not options.trust_unsigned


def test_a_restore_names_its_set():
    with pytest.raises(OptionError, match="^which backup set\\? give SET"):
        parsed(restore.SPEC)


def test_a_restore_from_a_repository_needs_no_local_set():
    assert parsed(restore.SPEC, repo="/srv/restic", set="latest").repo == "/srv/restic"


@pytest.mark.parametrize("what", ["missing", "file"])
def test_a_set_that_is_not_a_directory_is_refused(tmp_path, what):
    bad = tmp_path / "set"
    if what == "file":
        bad.write_text("x")
    with pytest.raises(OptionError, match="a backup set is a directory") as got:
        parsed(restore.SPEC, backup_set=str(bad))
    assert str(bad) in str(got.value)
    assert ("not a directory" if what == "file" else "no such directory") in str(got.value)


@pytest.mark.parametrize("url", ["ftp://region/MAAS", "http://region/MAAS\nx: y", "http://region/$(reboot)"])
def test_a_maas_url_that_is_no_http_url_is_refused(set_dir, url):
    with pytest.raises(OptionError, match="^--maas-url .* is not an http\\(s\\) URL"):
        parsed(restore.SPEC, backup_set=set_dir, maas_url=url)


def test_a_good_maas_url_and_database_host_pass(set_dir):
    opts = parsed(restore.SPEC, backup_set=set_dir, maas_url="http://10.0.0.9:5240/MAAS", database_host="db.example")
    options = restore.restore_options(opts)
    assert options.maas_url == "http://10.0.0.9:5240/MAAS" and options.database_host == "db.example"


@pytest.mark.parametrize("host", ["db;reboot", "db host", "-oProxyCommand=x"])
def test_a_database_host_that_is_no_host_is_refused(set_dir, host):
    with pytest.raises(OptionError, match="^--database-host .* is not a host name or address"):
        parsed(restore.SPEC, backup_set=set_dir, database_host=host)


@pytest.mark.parametrize("text", ["region1", "region1=", "=region2", "region1=../x"])
def test_a_map_that_is_not_safe_old_new_pairs_is_refused(set_dir, text):
    with pytest.raises(OptionError, match="--map"):
        parsed(restore.SPEC, backup_set=set_dir, map=text)


def test_a_map_of_pairs_passes(set_dir):
    pairs = "region1=dr1, rack1=dr2"
    assert parsed(restore.SPEC, backup_set=set_dir, map=pairs).map == pairs


def test_the_database_credentials_are_checked_with_the_restore(set_dir):
    with pytest.raises(OptionError, match="--database-user and --database-password-file go together"):
        parsed(restore.SPEC, backup_set=set_dir, database_password_file=set_dir)
