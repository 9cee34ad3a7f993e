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


VERSIONS = [(2, 7), (2, 8), (2, 9), (3, 0), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (3, 6), (3, 7)]


def traced(install: str, version: tuple[int, int]) -> dict:
    """What MAAS's source says of one (install, version), written apart from the table (issue 23: snap 3.3/3.4
    once resolved to the 2.8 entry, with the secret in the wrong table)."""
    snap = install == "snap"
    common = "/var/snap/maas/common"
    facts = {
        # migration 0282_rpc_shared_secret_to_secret @ 3.3
        "secret_in_db": ("maasserver_secret" if version >= (3, 3) else "maasserver_config"),
        # snapcraft.yaml: supervisor to 3.4, pebble from 3.5
        "snap_unit": ("snap.maas.pebble" if version >= (3, 5) else "snap.maas.supervisor") if snap else None,
        # service_monitor.py: HTTPService from 3.2, temporal from 3.5 (deb units; the snap runs one unit)
        "region_http": not snap and version >= (3, 2),
        "temporal": not snap and version >= (3, 5),
        # snap/hooks/install @ 2.8 moved $SNAP_DATA/var/lib/maas to $SNAP_COMMON/maas
        "secret": (f"{common}/maas/secret" if version >= (2, 8) else "/var/snap/maas/current/var/lib/maas/secret")
                  if snap else "/var/lib/maas/secret",
        # maas-region-api.postinst @ 3.3: regiond.conf maas:maas
        "conf_owner": "root:root" if snap else ("maas:maas" if version >= (3, 3) else "root:maas"),
        # bootresources.py @ 3.5: image-storage
        "images": bool(version >= (3, 5)),
        # maas-dhcp.postinst: /var/lib/maas/dhcp root:dhcpd on every deb rack
        "dhcp_owners": None if snap else ("/var/lib/maas/dhcp", ("dhcpd", "root")),
        # maas_certificates.py @ 2.8-3.0, certificates.py get_maas_cert_tuple @ 3.1-3.6: the LXD client certificate
        "lxd_certificates": (f"{common}/certificates" if version >= (2, 8) else None) if snap else
                            "/etc/maas/certificates",
    }
    return facts


@pytest.mark.parametrize("install", ["deb", "snap"])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_install_and_version_gets_the_facts_maas_source_traces(install, version):
    lay = layouts.layout_for(install, version)
    want = traced(install, version)
    region_units = lay.units({"region"})
    assert lay.secret_in_db[0] == want["secret_in_db"]
    if want["snap_unit"]:
        assert region_units == (want["snap_unit"],)
    assert ("maas-http" in region_units) == want["region_http"]
    assert ("maas-temporal" in region_units) == want["temporal"]
    assert lay.secret == want["secret"]
    assert lay.conf_owner == want["conf_owner"]
    assert bool(lay.image_dirs) == want["images"]
    rack_owners = {o.path: tuple(sorted(o.names)) for o in lay.subtree_owners if o.role == "rack"}
    assert (next(iter(rack_owners.items()), None)) == want["dhcp_owners"]
    lxd = want["lxd_certificates"]
    assert lxd is None or any(lxd == t or lxd.startswith(t + "/") for t in lay.trees)
