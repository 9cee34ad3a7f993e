"""The one table of MAAS layout facts: paths, units, excludes, secret, commands.

Every MAAS path, unit name and MAAS command maasops uses lives here and nowhere
else. A layout is chosen by install type (deb or snap) and MAAS version; see
``../shared/reference/maas-facts.md`` for the sources of each fact. The lab builds
its simulated hosts from this same table, so a fact changed here changes both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

Version = tuple[int, int]

SNAP_DATA = "/var/snap/maas/current"
SNAP_COMMON = "/var/snap/maas/common"
SNAP_ROOT = "/snap/maas/current"

DEB_REGION_UNITS = ("maas-regiond", "maas-proxy", "maas-syslog")
DEB_RACK_UNITS = ("maas-rackd", "maas-dhcpd", "maas-dhcpd6", "maas-http")
# 3.5+: inferred from the 3.5 unit files (see maas-facts.md, "Services").
DEB35_REGION_UNITS = DEB_REGION_UNITS + ("maas-apiserver", "maas-temporal", "maas-temporal-worker")
DEB35_RACK_UNITS = DEB_RACK_UNITS + ("maas-agent",)


@dataclass(frozen=True)
class Layout:
    """Where one (install type, version range) keeps its state and how it is driven."""

    name: str
    install: str  # "deb" or "snap"
    min_version: Version
    max_version: Version  # inclusive
    regiond_conf: str
    rackd_conf: str
    secret: str
    maas_id: str
    snap_mode: str | None
    certificates: str | None
    trees: tuple[str, ...]  # config trees archived on every controller
    region_trees: tuple[str, ...]  # archived on regions only
    cache_excludes: tuple[str, ...]  # always left out (re-downloaded by MAAS)
    image_dirs: tuple[str, ...]  # left out only with --exclude-images
    region_units: tuple[str, ...]
    rack_units: tuple[str, ...]
    conf_owner: str  # owner:group of regiond.conf / rackd.conf
    state_owner: str  # owner:group of secret / maas_id
    dbupgrade: tuple[str, ...]
    register_rack: tuple[str, ...]  # format fields: {url}, {secret}

    def units(self, roles: frozenset[str] | set[str]) -> tuple[str, ...]:
        """The service units this layout runs for the given roles, in stop order."""
        units: list[str] = []
        if "region" in roles:
            units += self.region_units
        if "rack" in roles:
            units += [u for u in self.rack_units if u not in units]
        return tuple(units)

    def covers(self, version: Version) -> bool:
        """True when this layout describes MAAS ``version`` (major, minor)."""
        return self.min_version <= version <= self.max_version


_DEB = Layout(
    name="deb-2.7",
    install="deb",
    min_version=(2, 7),
    max_version=(3, 2),
    regiond_conf="/etc/maas/regiond.conf",
    rackd_conf="/etc/maas/rackd.conf",
    secret="/var/lib/maas/secret",
    maas_id="/var/lib/maas/maas_id",
    snap_mode=None,
    certificates=None,
    trees=("/etc/maas", "/var/lib/maas"),
    region_trees=("/etc/dbconfig-common/maas-region-controller.conf",),
    cache_excludes=("/var/lib/maas/boot-resources",),
    image_dirs=(),
    region_units=DEB_REGION_UNITS,
    rack_units=DEB_RACK_UNITS,
    conf_owner="root:maas",
    state_owner="maas:maas",
    dbupgrade=("maas-region", "dbupgrade"),
    register_rack=("maas-rack", "register", "--url", "{url}", "--secret", "{secret}"),
)

_SNAP = Layout(
    name="snap-2.8",
    install="snap",
    min_version=(2, 8),
    max_version=(3, 4),
    regiond_conf=f"{SNAP_DATA}/regiond.conf",
    rackd_conf=f"{SNAP_DATA}/rackd.conf",
    secret=f"{SNAP_COMMON}/maas/secret",
    maas_id=f"{SNAP_COMMON}/maas/maas_id",
    snap_mode=f"{SNAP_COMMON}/snap_mode",
    certificates=None,
    trees=(SNAP_DATA, f"{SNAP_COMMON}/maas", f"{SNAP_COMMON}/snap_mode"),
    region_trees=(),
    cache_excludes=(f"{SNAP_COMMON}/maas/boot-resources",),
    image_dirs=(),
    region_units=("snap.maas.supervisor",),
    rack_units=("snap.maas.supervisor",),
    conf_owner="root:root",
    state_owner="root:root",
    dbupgrade=("maas", "migrate"),
    register_rack=("maas", "init", "rack", "--maas-url", "{url}", "--secret", "{secret}", "--force"),
)

LAYOUTS: tuple[Layout, ...] = (
    _DEB,
    replace(_DEB, name="deb-3.3", min_version=(3, 3), max_version=(3, 4), conf_owner="maas:maas"),
    replace(
        _DEB,
        name="deb-3.5",
        min_version=(3, 5),
        max_version=(3, 99),
        conf_owner="maas:maas",
        certificates="/var/lib/maas/certificates",
        cache_excludes=(),
        image_dirs=("/var/lib/maas/image-storage",),
        region_units=DEB35_REGION_UNITS,
        rack_units=DEB35_RACK_UNITS,
    ),
    replace(
        _SNAP,
        name="snap-2.7",
        min_version=(2, 7),
        max_version=(2, 7),
        secret=f"{SNAP_DATA}/var/lib/maas/secret",
        maas_id=f"{SNAP_DATA}/var/lib/maas/maas_id",
        trees=(SNAP_DATA, f"{SNAP_COMMON}/snap_mode"),
        cache_excludes=(f"{SNAP_DATA}/var/lib/maas/boot-resources",),
    ),
    _SNAP,
    replace(
        _SNAP,
        name="snap-3.5",
        min_version=(3, 5),
        max_version=(3, 99),
        certificates=f"{SNAP_DATA}/certificates",
        cache_excludes=(),
        image_dirs=(f"{SNAP_COMMON}/maas/image-storage",),
        region_units=("snap.maas.pebble",),
        rack_units=("snap.maas.pebble",),
    ),
)

# Commands that drive services; the unit names come from the layout.
SNAP_NAME = "maas"
SYSTEMCTL = "systemctl"
POSTGRESQL_UNIT = "postgresql"

# From 3.3 the region rewrites its secret file from the database (or Vault) on start;
# before, it refuses to start when the two differ.
SECRET_FROM_DB_SINCE: Version = (3, 3)
# Where MAAS keeps the secret in its database (maasserver_config, a JSON string).
SECRET_CONFIG_NAME = "rpc_shared_secret"

# PostgreSQL facts.
DB_NAME_DEFAULT = "maasdb"
DB_USER_DEFAULT = "maas"
DB_PORT_DEFAULT = 5432
PG_SUPERUSER = "postgres"
MAAS_TEST_DB_SOCKET = "/var/snap/maas-test-db/common/postgres/sockets"
# Every complete pg_dump/pg_dumpall output ends with this comment line.
DUMP_COMPLETE_LINE = "-- PostgreSQL database dump complete"
DUMPALL_COMPLETE_LINE = "-- PostgreSQL database cluster dump complete"

# Packages a deb install shows in dpkg, per role.
DEB_REGION_PACKAGES = ("maas-region-api", "maas-region-controller")
DEB_RACK_PACKAGES = ("maas-rack-controller",)
DEB_COMMON_PACKAGES = ("maas-common",)

SNAP_MODES = {"region": frozenset({"region"}), "rack": frozenset({"rack"}),
              "region+rack": frozenset({"region", "rack"}), "all": frozenset({"region", "rack"}),
              "none": frozenset()}


class UnknownLayout(LookupError):
    """No layout describes this install type and version."""


def parse_version(text: str) -> Version:
    """Major and minor of a MAAS version string as deb or snap prints it.

    ``1:3.5.3-16381-g.5b2e8a6f6-0ubuntu1~22.04.1`` and ``3.4.2-14353-g.5a5221d57``
    both work; the epoch is dropped.
    """
    m = re.match(r"^(?:\d+:)?(\d+)\.(\d+)", text.strip())
    if not m:
        raise ValueError(f"not a MAAS version: {text!r}")
    return int(m.group(1)), int(m.group(2))


def layout_for(install: str, version: Version) -> Layout:
    """The layout of MAAS ``version`` installed as ``install`` ("deb" or "snap")."""
    for layout in LAYOUTS:
        if layout.install == install and layout.covers(version):
            return layout
    raise UnknownLayout(f"no layout for MAAS {version[0]}.{version[1]} installed as {install}")


def snap_mode_for(roles: frozenset[str] | set[str]) -> str:
    """The snap_mode file content for a set of roles."""
    if roles >= {"region", "rack"}:
        return "region+rack"
    if "region" in roles:
        return "region"
    if "rack" in roles:
        return "rack"
    return "none"
