"""The layout table: versions map to the right layout, facts as in maas-facts.md."""

import pytest

from maasops import layouts


@pytest.mark.parametrize("text,version", [
    ("1:3.5.3-16381-g.5b2e8a6f6-0ubuntu1~22.04.1", (3, 5)), ("2.9.2-9164-g.ac176b5c4", (2, 9)),
    ("3.4.2", (3, 4))])
def test_parse_version(text, version):
    assert layouts.parse_version(text) == version


@pytest.mark.parametrize("install,version,name", [
    ("deb", (2, 7), "deb-2.7"), ("deb", (3, 1), "deb-2.7"), ("deb", (3, 2), "deb-3.2"), ("deb", (3, 4), "deb-3.3"),
    ("deb", (3, 6), "deb-3.5"),
    ("snap", (2, 7), "snap-2.7"), ("snap", (2, 9), "snap-2.8"), ("snap", (3, 5), "snap-3.5")])
def test_layout_for(install, version, name):
    assert layouts.layout_for(install, version).name == name


def test_unknown_versions_are_refused():
    with pytest.raises(layouts.UnknownLayout):
        layouts.layout_for("deb", (2, 6))


def test_facts_from_the_fact_sheet():
    snap = layouts.layout_for("snap", (3, 4))
    assert snap.secret == "/var/snap/maas/common/maas/secret" and snap.regiond_conf.startswith(layouts.SNAP_DATA)
    assert snap.dbupgrade == ("maas", "migrate")
    deb35 = layouts.layout_for("deb", (3, 5))
    assert "maas-agent" in deb35.units({"rack"}) and "maas-agent" not in deb35.units({"region"})
    assert deb35.image_dirs == ("/var/lib/maas/image-storage",)
    assert deb35.cache_excludes == ("/var/lib/maas/tftp_root",)  # rebuilt by rackd on start (3.5 config.py)
    assert layouts.layout_for("snap", (3, 5)).units({"region"}) == ("snap.maas.pebble",)
    assert not any(t.startswith(layouts.SNAP_ROOT) for lay in layouts.LAYOUTS for t in lay.trees)


def test_every_fact_names_its_source_in_maas():
    missing = [f for f in layouts.fact_names() if f not in layouts.SOURCES]
    assert missing == []
    assert all("@" in source or source.startswith("snapd") or "doc" in source for source in layouts.SOURCES.values())
