"""``maasops verify``'s parse-time check (fleet_request.check_set_named as verify takes it): a local set that is a
directory, or --repo without one."""

from __future__ import annotations

import pytest

from maasops.commands import verify
from maasops.options import OptionError
from tests.builders import parsed


def test_a_local_set_that_is_a_directory_passes(tmp_path):
    assert parsed(verify.SPEC, backup_set=str(tmp_path)).backup_set == str(tmp_path)


def test_verify_names_its_set():
    with pytest.raises(OptionError, match="^which backup set"):
        parsed(verify.SPEC)


def test_a_set_in_a_repository_needs_no_local_directory():
    # Invoke gives the positional as '' once --repo is given (options.OptionalPositional)
    opts = parsed(verify.SPEC, backup_set="", repo="/srv/restic", set="latest")
    assert (opts.backup_set, opts.set) == (None, "latest")


def test_a_set_that_is_not_there_is_refused_naming_it(tmp_path):
    with pytest.raises(OptionError, match=f"^{tmp_path / 'gone'}: no such directory"):
        parsed(verify.SPEC, backup_set=str(tmp_path / "gone"))
