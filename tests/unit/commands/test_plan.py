"""``maasops plan``'s parse-time check (commands.plan.check_plan): ``plan backup`` is checked as a backup is,
``plan restore`` as a restore is."""

from __future__ import annotations

import pytest

from maasops.commands import plan
from maasops.options import OptionError
from tests.builders import parsed


def test_plan_backup_is_checked_as_a_backup():
    assert parsed(plan.SPEC, what="backup").what == "backup"  # a backup names no set
    with pytest.raises(OptionError, match="^--repo: "):
        parsed(plan.SPEC, what="backup", repo="/srv/restic", compress="gzip")
    with pytest.raises(OptionError, match="^--database-name "):
        parsed(plan.SPEC, what="backup", database_name="m" * 64)


def test_plan_restore_is_checked_as_a_restore(tmp_path):
    with pytest.raises(OptionError, match="^which backup set"):
        parsed(plan.SPEC, what="restore")
    assert parsed(plan.SPEC, what="restore", backup_set=str(tmp_path)).backup_set == str(tmp_path)
    with pytest.raises(OptionError, match="^--maas-url "):
        parsed(plan.SPEC, what="restore", backup_set=str(tmp_path), maas_url="ftp://x")


def test_plan_takes_backup_or_restore_only():
    with pytest.raises(OptionError, match="^--what 'prune': must be one of backup, restore"):
        parsed(plan.SPEC, what="prune")
