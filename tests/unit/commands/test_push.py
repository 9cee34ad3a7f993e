"""``maasops push``'s parse-time check (fleet_request.check_local_set): the set pushed is a local directory."""

from __future__ import annotations

import pytest

from maasops.commands import push
from maasops.options import OptionError
from tests.builders import parsed


def test_push_takes_a_local_set_only(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OptionError, match=f"^{tmp_path / 'file'}: not a directory \\(a backup set is a directory"):
        parsed(push.SPEC, backup_set=str(tmp_path / "file"), repo="/srv/restic")
    assert parsed(push.SPEC, backup_set=str(tmp_path), repo="/srv/restic").backup_set == str(tmp_path)
