"""``maasops schedule``'s parse-time check: the database credentials the timer's backup is given go together."""

from __future__ import annotations

import pytest

from maasops.commands import schedule
from maasops.options import OptionError
from tests.builders import parsed


def test_schedule_checks_the_database_credentials(tmp_path):
    pw = tmp_path / "db.pass"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    with pytest.raises(OptionError, match="^--database-user and --database-password-file go together"):
        parsed(schedule.SPEC, action="install", database_password_file=str(pw))
    opts = parsed(schedule.SPEC, action="install", database_user="maas", database_password_file=str(pw))
    assert (opts.action, opts.database_user) == ("install", "maas")


def test_schedule_takes_install_status_or_remove():
    with pytest.raises(OptionError, match="^--action 'start': must be one of install, status, remove"):
        parsed(schedule.SPEC, action="start")
