"""The one table of MAAS facts: paths, units, excludes, secret, commands, and where each comes from.

Every MAAS path, unit name, file format and MAAS command maasops uses lives here
and nowhere else. A layout is chosen by install type (deb or snap) and MAAS
version. Every fact names its source in MAAS's own tree (canonical/maas, ``path @
branch-or-tag``) in :data:`SOURCES`; a test fails for a fact without one. The lab
builds its simulated hosts from this same table, so a fact changed here changes
both. What a layout allows to be written is also what a restore will write: the
table, never a backup set, decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

Version = tuple[int, int]

SNAP_DATA = "/var/snap/maas/current"
SNAP_COMMON = "/var/snap/maas/common"
SNAP_ROOT = "/snap/maas/current"
SNAP_REVISION_DIR = re.compile(r"^/var/snap/maas/[0-9]+$")  # what $SNAP_DATA resolves to on a host


@dataclass(frozen=True)
class SubtreeOwners:
    """A directory inside a tree whose contents (it included) belong to other users than the tree's."""

    path: str
    names: tuple[str, ...]  # the users and groups what lies there may belong to
    role: str  # the role whose hosts have it (its owners exist there)


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
    cache_excludes: tuple[str, ...]  # always left out (caches MAAS rebuilds or re-downloads)
    image_dirs: tuple[str, ...]  # left out only with --exclude-images
    region_units: tuple[str, ...]
    rack_units: tuple[str, ...]
    conf_owner: str  # owner:group of regiond.conf / rackd.conf
    state_owner: str  # owner:group of secret / maas_id
    owners: tuple[str, ...]  # the users and groups a restored file may belong to, but in subtree_owners
    subtree_owners: tuple[SubtreeOwners, ...]  # directories with owners of their own, per role
    dbupgrade: tuple[str, ...]
    secret_in_db: tuple[str, str]  # (table, key) where the database keeps the shared secret

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

    def owner_rules(self, roles: frozenset[str] | set[str]) -> tuple[tuple[str, frozenset[str]], ...]:
        """(path, the names what lies below it may belong to), most specific path first, for a host's roles."""
        rules = [(o.path, frozenset(o.names)) for o in self.subtree_owners if o.role in roles]
        rules += [(t, frozenset(self.owners)) for t in self.archived_trees(roles)]
        return tuple(sorted(rules, key=lambda r: -len(r[0])))

    def owner_names(self, roles: frozenset[str] | set[str]) -> frozenset[str]:
        """Every user and group a restored file of a host with these roles may belong to."""
        return frozenset(n for _, names in self.owner_rules(roles) for n in names)

    def archived_trees(self, roles: frozenset[str] | set[str]) -> tuple[str, ...]:
        """The trees a backup of a host with these roles archives (and a restore may write)."""
        return self.trees + (self.region_trees if "region" in roles else ())


DEB_REGION_UNITS = ("maas-regiond", "maas-proxy", "maas-syslog")
DEB_RACK_UNITS = ("maas-rackd", "maas-dhcpd", "maas-dhcpd6", "maas-http", "maas-proxy", "maas-syslog")
SECRET_IN_CONFIG = ("maasserver_config", "rpc_shared_secret")  # value: a JSON string
SECRET_IN_SECRETS = ("maasserver_secret", "global/rpc-shared")  # value: {"secret": hex}
DHCP_USER = "dhcpd"  # isc-dhcp-server's system user and group; maas-rack-controller depends on maas-dhcp
DEB_DHCP_OWNERS = (SubtreeOwners("/var/lib/maas/dhcp", ("root", DHCP_USER), "rack"),)
# The LXD client certificate (maas.crt, maas.key, maas.pub) VM hosts added before 3.1 trust; a deb keeps it in
# /etc/maas/certificates (inside /etc/maas).
SNAP_LXD_CERTIFICATES = f"{SNAP_COMMON}/certificates"

_DEB = Layout(
    name="deb-2.7",
    install="deb",
    min_version=(2, 7),
    max_version=(3, 1),
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
    owners=("root", "maas"),
    subtree_owners=DEB_DHCP_OWNERS,
    dbupgrade=("maas-region", "dbupgrade"),
    secret_in_db=SECRET_IN_CONFIG,
)

_SNAP = Layout(
    name="snap-2.8",
    install="snap",
    min_version=(2, 8),
    max_version=(3, 2),
    regiond_conf=f"{SNAP_DATA}/regiond.conf",
    rackd_conf=f"{SNAP_DATA}/rackd.conf",
    secret=f"{SNAP_COMMON}/maas/secret",
    maas_id=f"{SNAP_COMMON}/maas/maas_id",
    snap_mode=f"{SNAP_COMMON}/snap_mode",
    certificates=None,
    trees=(SNAP_DATA, f"{SNAP_COMMON}/maas", f"{SNAP_COMMON}/snap_mode", SNAP_LXD_CERTIFICATES),
    region_trees=(),
    cache_excludes=(f"{SNAP_COMMON}/maas/boot-resources",),
    image_dirs=(),
    region_units=("snap.maas.supervisor",),
    rack_units=("snap.maas.supervisor",),
    conf_owner="root:root",
    state_owner="root:root",
    owners=("root",),
    subtree_owners=(),
    dbupgrade=("maas", "migrate"),
    secret_in_db=SECRET_IN_CONFIG,
)

_DEB_32 = replace(_DEB, name="deb-3.2", min_version=(3, 2), max_version=(3, 2),
                  region_units=DEB_REGION_UNITS + ("maas-http",))
_DEB_33 = replace(_DEB_32, name="deb-3.3", min_version=(3, 3), max_version=(3, 4), conf_owner="maas:maas",
                  secret_in_db=SECRET_IN_SECRETS)

LAYOUTS: tuple[Layout, ...] = (
    _DEB,
    _DEB_32,
    _DEB_33,
    replace(
        _DEB_33,
        name="deb-3.5",
        min_version=(3, 5),
        max_version=(3, 99),
        certificates="/var/lib/maas/certificates",
        cache_excludes=("/var/lib/maas/tftp_root",),
        image_dirs=("/var/lib/maas/image-storage",),
        region_units=_DEB_33.region_units + ("maas-apiserver", "maas-temporal", "maas-temporal-worker"),
        rack_units=DEB_RACK_UNITS + ("maas-agent",),
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
    replace(_SNAP, name="snap-3.3", min_version=(3, 3), max_version=(3, 4), secret_in_db=SECRET_IN_SECRETS),
    replace(
        _SNAP,
        name="snap-3.5",
        min_version=(3, 5),
        max_version=(3, 99),
        certificates=f"{SNAP_DATA}/certificates",
        cache_excludes=(f"{SNAP_COMMON}/maas/cache", f"{SNAP_COMMON}/maas/tftp_root"),
        image_dirs=(f"{SNAP_COMMON}/maas/image-storage",),
        region_units=("snap.maas.pebble",),
        rack_units=("snap.maas.pebble",),
        secret_in_db=SECRET_IN_SECRETS,
    ),
)

# Commands that drive services; the unit names come from the layout.
SNAP_NAME = "maas"
SYSTEMCTL = "systemctl"
POSTGRESQL_UNIT = "postgresql"

# From 3.3 the region rewrites its secret file from the database (or Vault) on start;
# before, a file that differs from the database keeps regiond from finishing its start-up.
SECRET_FROM_DB_SINCE: Version = (3, 3)
# Up to this version boot resources' bytes are PostgreSQL large objects in the database (a dump carries them);
# from 3.5 they are files in image-storage and the first 3.5 region to start moves them out of the database.
IMAGES_IN_DB_UNTIL: Version = (3, 4)
# The region answers this once it has started (anonymous GET), on every version.
REGION_READY_URL = "http://localhost:5240/MAAS/api/2.0/version/"

# regiond.conf (YAML) keys the probe reads; the secret ones never leave the host.
REGIOND_KEYS = ("maas_url", "database_host", "database_port", "database_name", "database_user", "vault_url")
REGIOND_SECRET_KEYS = ("database_pass", "vault_secret_id", "vault_approle_id")
REGIOND_DATABASE_KEYS = ("database_port", "database_name", "database_user", "database_pass")
RACKD_URL_KEY = "maas_url"  # a YAML list in rackd.conf (a plain string is read too)

# PostgreSQL facts.
DB_NAME_DEFAULT = "maasdb"
DB_USER_DEFAULT = "maas"
DB_PORT_DEFAULT = 5432
PG_SUPERUSER = "postgres"
MAAS_TEST_DB_SOCKET = f"{SNAP_COMMON}/test-db-socket"  # database_host of a maas-test-db region
# ... a content-interface mount inside the maas snap's mount namespace only; on the host the socket is here:
MAAS_TEST_DB_HOST_SOCKETS = "/var/snap/maas-test-db/common/postgres/sockets"
SNAP_POSTGRES = f"{SNAP_COMMON}/postgres"  # 2.7/2.8 snap "all" mode: PostgreSQL inside the snap
# Every complete pg_dump/pg_dumpall output ends with this comment line.
DUMP_COMPLETE_LINE = "-- PostgreSQL database dump complete"
DUMPALL_COMPLETE_LINE = "-- PostgreSQL database cluster dump complete"

# Packages a deb install shows in dpkg, per role. A secondary region has maas-region-api only.
DEB_REGION_PACKAGES = ("maas-region-api", "maas-region-controller")
DEB_RACK_PACKAGES = ("maas-rack-controller",)
DEB_COMMON_PACKAGES = ("maas-common",)

# snap_mode file contents (written without a final newline) and the roles they mean.
SNAP_MODES = {"region": frozenset({"region"}), "rack": frozenset({"rack"}),
              "region+rack": frozenset({"region", "rack"}), "none": frozenset()}
SNAP_MODE_ALL = "all"  # 2.7/2.8 only: region+rack with the snap's own PostgreSQL

SOURCES: dict[str, str] = {
    "regiond_conf": "src/provisioningserver/config.py @ 3.5 (RegionConfiguration, /etc/maas); "
                    "snap/local/tree/bin/run-regiond @ 3.5 (MAAS_REGION_CONFIG=$SNAP_DATA/regiond.conf)",
    "rackd_conf": "src/provisioningserver/config.py @ 3.5 (ClusterConfiguration); snap run-rackd @ 3.5 "
                  "(MAAS_CLUSTER_CONFIG=$SNAP_DATA/rackd.conf)",
    "secret": "src/provisioningserver/security.py @ 3.5 (MAAS_SHARED_SECRET, $MAAS_DATA/secret); snap 2.7 has no "
              "MAAS_DATA: $SNAP_DATA/var/lib/maas (snap/local/tree/bin/run-regiond @ 2.7)",
    "maas_id": "src/provisioningserver/utils/env.py @ 3.5 (MAAS_ID, $MAAS_DATA/maas_id)",
    "snap_mode": "src/maascli/snap.py @ 3.5 (get_mode_filepath: $SNAP_COMMON/snap_mode, written with no newline)",
    "certificates": "src/provisioningserver/certificates.py @ 3.5 (_get_cluster_certificates_path: "
                    "$MAAS_ROOT/certificates: cluster.pem, cluster.key, cacerts.pem); debian/maas-common.dirs @ 3.5",
    "trees": "maas-backup doc 2.7-2.9 (/etc/maas, /var/lib/maas; $SNAP_DATA and $SNAP_COMMON/maas for snaps); "
             "snap/hooks/install @ 2.8 (moves $SNAP_DATA/var/lib/maas to $SNAP_COMMON/maas)",
    "region_trees": "debian/maas-region-controller.postinst @ 3.5 (dbconfig-common's "
                    "/etc/dbconfig-common/maas-region-controller.conf)",
    "cache_excludes": "src/provisioningserver/config.py @ 3.4 (tftp_root = $MAAS_DATA/boot-resources/current) and "
                      "@ 3.5 ($MAAS_DATA/tftp_root, rebuilt by rackd on start: rackdservices plugin.py); "
                      "snap run-rackd @ 3.5 (MAAS_CACHE=$SNAP_COMMON/maas/cache: the agent's proxy cache, "
                      "httpproxy_cache_size 20 GB)",
    "image_dirs": "src/maasserver/bootresources.py @ 3.5 (image-storage: the only copy of uploaded images; "
                  "initialize_image_storage re-downloads synced ones)",
    "region_units": "src/maasserver/service_monitor.py @ 2.7-3.6 (regiond, proxy, syslog; HTTPService maas-http "
                    "from 3.2; TemporalService, TemporalWorkerService from 3.5); debian/maas-region-api"
                    ".maas-apiserver.service @ 3.5; snapcraft.yaml (supervisor to 3.4, pebble from 3.5)",
    "rack_units": "src/provisioningserver/service_monitor.py @ 2.7-3.6 (rackd, http, dhcpd, dhcpd6; "
                  "ProxyServiceOnRack, SyslogServiceOnRack: rack-only hosts; AgentServiceOnRack from 3.5)",
    "conf_owner": "src/maasserver/region_script.py @ 3.2 (root:maas 0640); debian/maas-region-api.postinst @ 3.3 "
                  "(chown maas:maas /etc/maas/regiond.conf); snap: everything runs as root",
    "state_owner": "debian/maas-region-api.postinst, maas-rack-controller.postinst @ 2.7-3.6 "
                   "(chown maas:maas /var/lib/maas/secret, maas_id; chmod 0640)",
    "owners": "debian/*.postinst @ 2.7-3.6 (files under the trees belong to root or maas); snap: root",
    "subtree_owners": "debian/maas-dhcp.postinst @ 2.7-3.6 (chown / install -d -o root -g dhcpd /var/lib/maas/dhcp); "
                      "debian/maas-dhcp.maas-dhcpd.service @ 3.5 (chown root:dhcpd, chmod 775 the directory, "
                      "664 dhcpd.leases; dhcpd -user dhcpd -group dhcpd rewrites the leases as dhcpd)",
    "DHCP_USER": "debian/control @ 2.7-3.6 (maas-rack-controller depends on maas-dhcp, which depends on "
                 "isc-dhcp-server: its dhcpd system user and group)",
    "DEB_DHCP_OWNERS": "debian/maas-dhcp.postinst @ 2.7-3.6; debian/maas-dhcp.dirs @ 3.5 (var/lib/maas/dhcp)",
    "SNAP_LXD_CERTIFICATES": "src/provisioningserver/maas_certificates.py @ 2.8-3.0 (snap: $SNAP_COMMON/certificates/"
                             "maas.key, maas.pub, maas.crt, generated on start); certificates.py @ 3.6 "
                             "(get_maas_cert_tuple still reads them for LXD VM hosts)",
    "dbupgrade": "src/maasserver/management/commands/dbupgrade.py @ 3.5 (maas-region dbupgrade, root only); "
                 "src/maascli/snap.py @ 3.5 (maas migrate)",
    "secret_in_db": "src/maasserver/security.py @ 3.2 (maasserver_config rpc_shared_secret); "
                    "src/maasserver/migrations/maasserver/0282_rpc_shared_secret_to_secret.py @ 3.3 "
                    "(maasserver_secret global/rpc-shared)",
    "SECRET_FROM_DB_SINCE": "src/maasserver/start_up.py @ 3.3 (inner_start_up: MAAS_SHARED_SECRET.set from the "
                            "database); security.py @ 3.2 (get_shared_secret_txn raises on a mismatch)",
    "IMAGES_IN_DB_UNTIL": "src/maasserver/models/largefile.py @ 3.4 (LargeFile.content: LargeObjectField, a "
                          "large object oid; BootResourceFile.largefile); migrations/maasserver/"
                          "0308_remove_images_from_db.py @ 3.5; bootresources.py @ 3.5 (export_images_from_db)",
    "REGION_READY_URL": "src/maasserver/api/version.py @ 3.5 (anonymous GET /MAAS/api/2.0/version/); "
                        "port 5240 in src/maasserver/config.py @ 3.5 (maas_url default)",
    "REGIOND_KEYS": "src/maasserver/config.py @ 3.5 (RegionConfiguration: maas_url, database_*, vault_*)",
    "REGIOND_DATABASE_KEYS": "src/maasserver/config.py @ 3.5 (RegionConfiguration: database_port, database_name, "
                             "database_user, database_pass)",
    "REGIOND_SECRET_KEYS": "src/maasserver/config.py @ 3.5 (database_pass, vault_approle_id, vault_secret_id)",
    "RACKD_URL_KEY": "src/provisioningserver/config.py @ 3.5 (maas_url: ForEach(ExtendedURL, convert_to_list))",
    "SNAP_NAME": "snap/snapcraft.yaml @ 3.5 (name: maas)",
    "SYSTEMCTL": "debian/*.service @ 3.5 (units are systemd's)",
    "POSTGRESQL_UNIT": "debian/control @ 3.5 (maas-region-controller depends on postgresql)",
    "DB_NAME_DEFAULT": "debian/maas-region-controller.postinst @ 3.5 (maasdb); src/maascli/snap.py (maas-test-db)",
    "DB_USER_DEFAULT": "debian/maas-region-controller.postinst @ 3.5 (maas)",
    "DB_PORT_DEFAULT": "src/maasserver/config.py @ 3.5 (database_port = 5432)",
    "PG_SUPERUSER": "maas-backup doc 2.7-2.9 (sudo -u postgres pg_dumpall -c)",
    "MAAS_TEST_DB_SOCKET": "src/maascli/snap.py @ 3.5 (maas-test-db:/// -> host=$SNAP_COMMON/test-db-socket)",
    "MAAS_TEST_DB_HOST_SOCKETS": "snap/snapcraft.yaml @ 3.5 (plug test-db-socket: content interface, target "
                                 "$SNAP_COMMON/test-db-socket); HACKING.rst @ 3.5 (-h /var/snap/maas-test-db/common/"
                                 "postgres/sockets)",
    "SNAP_POSTGRES": "src/maascli/snappy.py @ 2.7, 2.8 (all mode: initdb in $SNAP_COMMON/postgres, "
                     "database_host=$SNAP_COMMON/postgres/sockets); snapcraft.yaml @ 2.9 epoch 3 drops it",
    "DEB_REGION_PACKAGES": "debian/control @ 2.7-3.6 (maas-region-controller = maas-region-api + dbconfig-pgsql "
                           "+ postgresql; secondary regions install maas-region-api only)",
    "DEB_RACK_PACKAGES": "debian/control @ 2.7-3.6",
    "DEB_COMMON_PACKAGES": "debian/control @ 2.7-3.6",
    "SNAP_MODES": "src/maascli/snap.py @ 3.5 (region+rack, region, rack, none)",
    "SNAP_MODE_ALL": "src/maascli/snappy.py @ 2.7, 2.8 (mode all); snap/hooks/install @ 2.9 refuses it",
    "SNAP_DATA": "snapd: $SNAP_DATA = /var/snap/maas/<revision>, 'current' links to it",
    "SNAP_COMMON": "snapd: $SNAP_COMMON = /var/snap/maas/common",
    "SNAP_ROOT": "snapd: the read-only squashfs, /snap/maas/<revision>",
}


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
    for mode, mode_roles in SNAP_MODES.items():
        if mode_roles == frozenset(roles):
            return mode
    raise ValueError(f"no snap mode for roles {sorted(roles)}")


def on_host(path: str, snap_data: str | None) -> str:
    """A layout path as it is on a host ($SNAP_DATA resolved to the host's revision directory)."""
    if snap_data and (path == SNAP_DATA or path.startswith(SNAP_DATA + "/")):
        return snap_data + path[len(SNAP_DATA):]
    return path


def rebase(path: str, from_snap_data: str | None, to_snap_data: str | None) -> str:
    """A path under one host's snap revision directory, as it is under another host's."""
    if from_snap_data and to_snap_data and (path == from_snap_data or path.startswith(from_snap_data + "/")):
        return to_snap_data + path[len(from_snap_data):]
    return path


def fact_names() -> list[str]:
    """Every fact this table states (layout fields and module constants), for the sources test."""
    skip = {"name", "install", "min_version", "max_version"}
    consts = [n for n, v in globals().items() if n.isupper() and not n.startswith("_")
              and isinstance(v, (str, tuple, dict, int)) and n not in ("LAYOUTS", "SOURCES", "SNAP_REVISION_DIR")
              and not n.startswith(("DEB_REGION_UNITS", "DEB_RACK_UNITS", "SECRET_IN_", "DUMP"))]
    return [f.name for f in fields(Layout) if f.name not in skip] + consts
