"""image-storage as its own part of a repository set: the plan, the record, the manifest rules, the repository's
view of reused parts and prune. No host needed (tests/lab/test_repo.py does it on the lab)."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from maasops import backup_plan as bp
from maasops import manifest as mf
from maasops import reposet, retention
from maasops.backupset import LocalFiles
from maasops.parts import images
from maasops.plan import StepId
from maasops.reposet import RepoSet, Snapshot
from maasops.restore_plan import FleetRole, RestoreOptions, restore_plan
from tests.builders import facts, manifest, target

STORE = "/var/lib/maas/image-storage"
FP = "f" * 64


def images_record(origin: str | None = "20261101T000000Z", **kw) -> mf.Images:
    member = mf.Member(f"{STORE}/{'a' * 64}", "file", "0644", 999, 999, "maas", "maas", 5, "b" * 64)
    return mf.Images(**{"file": "images.tar", "compression": "none", "size": 10240, "sha256": "c" * 64,
                        "encryption": None, "plain_sha256": None, "trees": (STORE,), "actual_trees": (STORE,),
                        "files": (member,), "fingerprint": FP, "origin": origin, **kw})


def test_a_repository_backup_archives_images_apart_and_sends_them_only_if_the_fingerprint_changed():
    host = facts()
    local = bp.backup_plan(host, "local", bp.BackupOptions())
    assert not local.step(StepId.IMAGES) and local.spec.images is None  # a local set: one archive, as before
    plain = bp.BackupOptions(compress="none")  # what a backup into a repository sends (restic compresses)
    first = bp.backup_plan(host, "local", plain, split_images=True)
    archive = str(first.step(StepId.ARCHIVE).command)
    assert "--exclude=var/lib/maas/image-storage" in archive and STORE not in first.spec.archive.excluded
    sent = str(first.step(StepId.IMAGES).command)
    assert sent.startswith("tar --create") and sent.endswith("var/lib/maas/image-storage") and "if [" not in sent
    ids = [s.id for s in first.steps]
    assert ids.index(StepId.STOP_UNITS) < ids.index(StepId.IMAGES_STATE) < ids.index(StepId.START_UNITS)
    again = bp.backup_plan(host, "local", plain, split_images=True, previous_images=images_record())
    cond = str(again.step(StepId.IMAGES).command)
    assert cond.startswith("if [ \"$( find /var/lib/maas/image-storage -printf") and f"= {FP} ]; then exit 0" in cond
    assert "unchanged since 20261101T000000Z" in again.step(StepId.IMAGES).label
    assert again.spec.images.previous == images_record()
    excluded = bp.backup_plan(host, "local", replace(plain, exclude_images=True), split_images=True)
    assert not excluded.step(StepId.IMAGES)


def test_the_record_reuses_the_previous_one_only_when_nothing_came_and_the_fingerprint_is_its():
    spec = images.ImagesSpec("images.tar", (STORE,), (STORE,), images_record())
    assert images.host_record(spec, f"{FP}\n", 0, {}, [], "none") == images_record()
    assert images.host_record(spec, "e" * 64, 0, {}, [], "none") is None  # nothing came, yet it changed
    assert images.host_record(spec, "garbage", 0, {}, [], "none") is None
    assert images.host_record(replace(spec, previous=None), FP, 0, {}, [], "none") is None
    got = images.host_record(spec, " " + "e" * 64 + "  -\n", 10240, {"size": 10240, "sha256": "d" * 64,
                                                                 "encryption": None, "plain_sha256": None},
                        [asdict(images_record().files[0])], "none")
    assert (got.fingerprint, got.origin, got.sha256) == ("e" * 64, None, "d" * 64)


def test_the_reader_lists_nothing_from_an_empty_stream_and_members_from_a_tar():
    assert images.read(io.BytesIO(b""), "none") == ([], images.EMPTY, 0)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("var/lib/maas/image-storage/x")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    listing, _, size = images.read(io.BytesIO(raw.getvalue()), "none")
    assert [e["path"] for e in listing] == ["/var/lib/maas/image-storage/x"] and size == len(raw.getvalue())


def host_json(images_data: dict) -> dict:
    m = manifest("region1", "deb", "1:3.5.3-1", ("region",))
    return json.loads(json.dumps({**m.to_json(), "images": images_data, "format_version": mf.IMAGES_FORMAT}))


@pytest.mark.parametrize("change, error", [
    ({"trees": ["/etc/maas"], "actual_trees": ["/etc/maas"]}, "not deb-3.5's image-storage"),
    ({"origin": "../../x"}, "not a set's time"),
    ({"file": "images.tar.gz"}, "must be 'images.tar'"),
    ({"files": [{**asdict(images_record().files[0]), "path": "/etc/cron.d/x"}]}, "outside the archived trees"),
])
def test_a_host_manifest_with_a_forged_images_part_is_refused(change, error):
    data = {**asdict(images_record()), **change}
    with pytest.raises(mf.ManifestError, match=error):
        mf.parse_host(host_json(data), "region1", "region1/manifest.json")
    read = mf.parse_host(host_json(asdict(images_record())), "region1", "x")
    assert read.images == images_record() and read.to_json()["format_version"] == mf.IMAGES_FORMAT
    older = {**host_json(asdict(images_record())), "format_version": 2}
    with pytest.raises(mf.ManifestError, match="an images part in a format 2 manifest"):
        mf.parse_host(older, "region1", "x")


def test_a_restore_uploads_the_images_before_the_stop_and_extracts_them_into_image_storage_only():
    m = replace(manifest("region1", "deb", "1:3.5.3-1", ("region",)), images=images_record())
    t = target("region1", "deb", "1:3.5.3-1", ("region",))
    p = restore_plan(m, LocalFiles(Path("/sets/x")), t, FleetRole(), RestoreOptions(), "20261128T000000Z")
    ids = [s.id for s in p.steps]
    assert ids.index(StepId.UPLOAD_IMAGES) < ids.index(StepId.STOP_UNITS)
    assert ids.index(StepId.EXTRACT) < ids.index(StepId.EXTRACT_IMAGES)
    assert p.step(StepId.UPLOAD_IMAGES).send.path == "region1/images.tar"
    assert str(p.step(StepId.EXTRACT_IMAGES).command).endswith("-- var/lib/maas/image-storage")
    assert "upload-images.tar" in str(p.step(StepId.UPLOAD_ARCHIVE).undo)


def snap(sid: str, path: str, **tags) -> Snapshot:
    return Snapshot(sid, path, tags)


def test_a_set_includes_the_images_it_reuses_and_a_set_kept_only_for_them_is_not_listed():
    one = RepoSet("lab", "20261101T000000Z", None, {"region1/images.tar": snap("i1", "/lab/20261101T000000Z/"
                                                                                  "region1/images.tar")})
    two = RepoSet("lab", "20261102T000000Z", snap("m2", "", state="complete", reuse="region1/20261101T000000Z"),
                  {"region1/config.tar": snap("c2", "/lab/20261102T000000Z/region1/config.tar")})
    sets = {("lab", s.stamp): s for s in (one, two)}
    assert reposet._resolve_reuse(sets) == {"i1"}
    assert two.files["region1/images.tar"].path.startswith("/lab/20261101T000000Z/")
    assert sorted(two.snapshot_ids()) == ["c2", "i1", "m2"]


def test_prune_forgets_a_removed_sets_snapshots_but_the_images_a_kept_set_reuses(monkeypatch):
    shared = snap("i1", "/lab/20261101T000000Z/region1/images.tar")
    one = RepoSet("lab", "20261101T000000Z", snap("m1", "", state="complete"), {"region1/images.tar": shared,
                                                                                "region1/config.tar": snap("c1", "")})
    two = RepoSet("lab", "20261102T000000Z", snap("m2", "", state="complete", verified="x"),
                  {"region1/images.tar": shared, "region1/config.tar": snap("c2", "")})
    forgotten = []
    monkeypatch.setattr(retention, "catalog", lambda repo: [one, two])
    monkeypatch.setattr(retention, "_policy", lambda repo, keep, dep: {"m1": "", "m2": "daily"})
    monkeypatch.setattr(retention.restic, "unlock", lambda repo: None)
    monkeypatch.setattr(retention.restic, "run", lambda repo, *args, **kw: forgotten.append(args) or "")
    retention.prune(SimpleNamespace(location="r"), retention.RetentionPolicy(), False, lambda s: None)
    assert sorted(forgotten[0][1:]) == ["c1", "m1"] and forgotten[1] == ("prune",)
