"""A repository's sets: which one --set names, and the catalog of sets either restic named (no repository needed)."""

from __future__ import annotations

import pytest

from maasops import repo as restic
from maasops import reposet
from maasops.repo import RepoError
from tests.builders import repo_set


def test_latest_is_the_newest_complete_set_and_a_set_names_its_deployment():
    sets = [repo_set("a", "20260101T000000Z", "complete"), repo_set("a", "20260102T000000Z", "incomplete"),
            repo_set("b", "20260103T000000Z", "complete")]
    assert reposet.find(sets, "a/latest").stamp == "20260101T000000Z"
    assert reposet.find(sets, "20260103T000000Z", "b").deployment == "b"
    with pytest.raises(RepoError, match="sets of a, b"):
        reposet.find(sets, "latest")
    with pytest.raises(RepoError, match="has no set"):
        reposet.find(sets, "a/20990101T000000Z")


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
