"""Retention over whole sets: restic's forget policy, the newest verified set always kept."""

from __future__ import annotations

import pytest

from maasops import retention
from maasops.repo import RepoError
from tests.builders import repo_set


def test_prune_never_removes_the_newest_verified_set_and_drops_stale_incomplete_ones():
    sets = [repo_set("a", "20260101T000000Z", "complete", verified="20260101T010000Z"),
            repo_set("a", "20260102T000000Z", "incomplete"), repo_set("a", "20260103T000000Z", "complete"),
            repo_set("a", "20260104T000000Z", None)]  # unfinished: may still be running
    verdict = {"id-a-20260101T000000Z": "", "id-a-20260103T000000Z": "daily snapshot"}
    keep = {d.set.stamp: d.keep for d in retention.decide(sets, verdict)}
    assert keep == {"20260101T000000Z": True, "20260102T000000Z": False, "20260103T000000Z": True,
                    "20260104T000000Z": True}
    with pytest.raises(RepoError):
        retention.RetentionPolicy(0, 0, 0).args()
