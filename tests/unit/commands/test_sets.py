"""``maasops sets``'s table (commands.sets.set_rows): one row per repository set, what its manifests' snapshot
says, or what its files show when the set was never finished."""

from __future__ import annotations

from maasops.commands import sets
from maasops.reposet import RepoSet, Snapshot
from tests.builders import repo_set


def test_a_finished_set_shows_its_manifests_tags():
    s = repo_set("prod", "20260101T000000Z", "complete", verified="2026-01-02T00:00:00Z")
    s.manifests.tags.update(hosts="region1+rack1", size=str(3 << 30))
    assert sets.set_rows([s]) == [{"deployment": "prod", "time": "20260101T000000Z", "hosts": "region1,rack1",
                                   "size": "3.0 GiB", "state": "complete", "verified": "2026-01-02T00:00:00Z"}]


def test_an_unfinished_set_shows_the_hosts_of_its_files_and_no_size():
    files = {f"{h}/{f}": Snapshot(f"id-{h}-{f}", f"/{h}/{f}", {}) for h in ("rack1", "region1")
             for f in ("archive.tar", "manifest.json")}
    row = sets.set_rows([RepoSet("prod", "20260101T000000Z", None, files)])[0]
    assert (row["hosts"], row["size"], row["state"], row["verified"]) == ("rack1,region1", "", "unfinished", "-")


def test_a_size_that_is_not_a_number_is_left_out():
    s = repo_set("prod", "20260101T000000Z", "partial")
    s.manifests.tags["size"] = "lots"
    row = sets.set_rows([s])[0]
    assert (row["size"], row["state"], row["verified"]) == ("", "partial", "-")


def test_no_sets_no_rows():
    assert sets.set_rows([]) == []
