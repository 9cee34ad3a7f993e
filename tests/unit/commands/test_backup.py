"""``maasops backup``'s parse-time check (commands.backup.check_backup): options as the command line gives them
(the spec parses them), each refusal naming its flag, and the options the plan then takes."""

from __future__ import annotations

import subprocess

import pyrage
import pytest

from maasops.commands import backup
from maasops.options import OptionError
from tests.builders import parsed


def _password_file(tmp_path, text="s3cret\n", mode=0o600):
    pw = tmp_path / "db.pass"
    pw.write_text(text)
    pw.chmod(mode)
    return str(pw)


def test_a_plain_backup_passes_and_compresses_by_the_hosts_tools():
    opts = parsed(backup.SPEC)
    assert backup.backup_options(opts).compress == "auto"
    assert backup.backup_options(opts).dump_format == "auto" and backup.backup_options(opts).credentials is None


def test_a_backup_into_a_repository_is_uncompressed_and_unencrypted():
    opts = parsed(backup.SPEC, repo="/srv/restic")
    assert backup.backup_options(opts).compress == "none"


AGE_KEY = str(pyrage.x25519.Identity.generate().to_public())


@pytest.mark.parametrize("given", [{"compress": "gzip"}, {"compress": "zstd"}, {"compress": "auto"},
                                   {"encrypt_to": AGE_KEY}])
def test_a_repository_backup_refuses_compress_and_encrypt_to(given):
    with pytest.raises(OptionError, match="--repo: .*leave out --compress and --encrypt-to"):
        parsed(backup.SPEC, repo="/srv/restic", **given)


def test_compress_none_into_a_repository_passes():
    assert parsed(backup.SPEC, repo="/srv/restic", compress="none").compress == "none"


def test_encrypt_to_takes_age_and_ssh_public_keys_and_refuses_anything_else(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    both = f"{AGE_KEY},{(tmp_path / 'k.pub').read_text().strip()}"
    assert parsed(backup.SPEC, encrypt_to=both).encrypt_to == both
    assert backup.backup_options(parsed(backup.SPEC, encrypt_to=both)).encrypt_to == both
    for bad in ("age1notakey", "ssh-ed25519 AAAAnot", " , "):
        with pytest.raises(OptionError, match="^--encrypt-to: "):
            parsed(backup.SPEC, encrypt_to=bad)


def test_a_database_name_longer_than_postgresql_allows_is_refused():
    assert parsed(backup.SPEC, database_name="m" * 63).database_name == "m" * 63
    with pytest.raises(OptionError, match="^--database-name is not a PostgreSQL database name"):
        parsed(backup.SPEC, database_name="m" * 64)
    with pytest.raises(OptionError, match="^--database-name is not"):
        parsed(backup.SPEC, database_name="é" * 32)  # 64 bytes: the limit is PostgreSQL's, in bytes


def test_the_database_credentials_are_checked_with_the_backup(tmp_path):
    with pytest.raises(OptionError, match="--database-user and --database-password-file go together"):
        parsed(backup.SPEC, database_user="maas")
    opts = parsed(backup.SPEC, database_user="maas", database_password_file=_password_file(tmp_path))
    creds = backup.backup_options(opts).credentials
    assert creds.user == "maas" and creds.password_file == str(tmp_path / "db.pass")
    with pytest.raises(OptionError, match="^--database-password-file: "):
        parsed(backup.SPEC, database_user="maas", database_password_file=_password_file(tmp_path, mode=0o644))
