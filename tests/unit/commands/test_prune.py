"""``maasops prune``'s parse-time check (commands.prune.check_prune): a retention policy that keeps something."""

from __future__ import annotations

import pytest

from maasops.commands import prune
from maasops.options import OptionError
from tests.builders import parsed


def test_the_default_policy_passes():
    opts = parsed(prune.SPEC, repo="/srv/restic")
    assert (opts.keep_daily, opts.keep_weekly, opts.keep_monthly) == (7, 4, 6)


@pytest.mark.parametrize("keep", ["keep_daily", "keep_weekly", "keep_monthly"])
def test_a_policy_keeping_one_kind_passes(keep):
    given = {"keep_daily": "0", "keep_weekly": "0", "keep_monthly": "0", keep: "1"}
    assert getattr(parsed(prune.SPEC, **given), keep) == 1


def test_a_policy_keeping_nothing_is_refused_naming_the_flags():
    with pytest.raises(OptionError, match="^--keep-daily, --keep-weekly and --keep-monthly are all 0"):
        parsed(prune.SPEC, keep_daily="0", keep_weekly="0", keep_monthly="0")


def test_a_negative_count_is_refused_by_its_flag_before_the_policy():
    with pytest.raises(OptionError, match="^--keep-weekly -1: must be from 0 to 10000"):
        parsed(prune.SPEC, keep_weekly="-1")
