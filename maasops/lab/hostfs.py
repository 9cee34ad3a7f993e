"""The file tree of one simulated controller host, written before it is mounted.

A host's tree is a directory per real top-level path (``fs/etc``, ``fs/var``,
``fs/usr``, ``fs/home``, ``fs/snap``, ``fs/tmp``); :mod:`.namespaces` mounts them
over the real paths inside the host's mount namespace, so the host sees
``/etc/maas/regiond.conf`` while this machine sees ``fs/etc/maas/regiond.conf``.
MAAS paths come from :mod:`maasops.layouts`.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from maasops import layouts
from maasops.lab.namespaces import sh
from maasops.lab.profiles import Profile

LOGIN_USER = "ubuntu"
STANDINS = resources.files("maasops.lab") / "standins"
SQL = resources.files("maasops.lab") / "sql"
BIG_CACHE_BYTES = 256 * 1024 * 1024  # sparse: proves the image cache is excluded
HAND_EDITED = ("region1", "rack1")  # hosts whose rackd.conf lacks its final newline
VAULT_DATABASE_CREDS = "/etc/maas-lab/vault/database-creds"  # a Vault profile's database credentials (stand-ins')


@dataclass(frozen=True)
class Ids:
    """Numeric ids of the lab's users, identical on every host."""

    user: int
    maas: int
    dhcpd: int

    def resolve(self, owner: str) -> tuple[int, int]:
        """uid, gid of an ``owner:group`` string naming root, maas, dhcpd or the login user."""
        table = {"root": 0, "maas": self.maas, layouts.DHCP_USER: self.dhcpd, LOGIN_USER: self.user}
        user, _, group = owner.partition(":")
        return table[user], table[group or user]


def free_ids() -> Ids:
    """Ids not used on this machine for the login user and the maas and dhcpd system users."""
    used = {int(line.split(":")[2]) for f in ("/etc/passwd", "/etc/group")
            for line in Path(f).read_text().splitlines() if line.count(":") >= 2}
    maas, dhcpd = [i for i in range(990, 900, -1) if i not in used][:2]
    user = next(i for i in range(1001, 60000) if i not in used)
    return Ids(user=user, maas=maas, dhcpd=dhcpd)


@dataclass
class HostFS:
    """Writes files into a host's tree by their path on the host."""

    root: Path
    ids: Ids

    def path(self, host_path: str) -> Path:
        """Where ``host_path`` lives on this machine."""
        return self.root / host_path.lstrip("/")

    def mkdir(self, host_path: str, owner: str = "root", mode: int = 0o755) -> Path:
        """Create a directory (and parents) with an owner and mode."""
        p = self.path(host_path)
        p.mkdir(parents=True, exist_ok=True)
        os.chown(p, *self.ids.resolve(owner))
        p.chmod(mode)
        return p

    def write(self, host_path: str, data: str | bytes, owner: str = "root", mode: int = 0o644) -> Path:
        """Write a file with an owner and mode, creating root-owned parents."""
        p = self.path(host_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        p.write_bytes(data)
        os.chown(p, *self.ids.resolve(owner))
        p.chmod(mode)
        return p

    def symlink(self, host_path: str, target: str) -> None:
        """Create a symlink (target as the host sees it)."""
        p = self.path(host_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)


def _without(text: str, names: set[str]) -> str:
    """An /etc/passwd-style file without the entries of ``names`` (the lab's own replace them)."""
    return "".join(line + "\n" for line in text.splitlines() if line.split(":", 1)[0] not in names)


def write_base(fs: HostFS, name: str, address: str, hosts: dict[str, str], authorized_key: str,
               password_hash: str | None, etc: Path = Path("/etc"), dhcpd: bool = False) -> None:
    """Users, sudo, /etc/hosts and the login user's home: the host as an admin finds it.

    The machine's own users show through (``etc``), except any of the lab's own names: a machine
    that already has an ``ubuntu`` (every Ubuntu cloud image) gets the lab's ubuntu on its hosts.
    ``dhcpd``: the host has isc-dhcp-server's system user and group (every deb rack: layouts.DHCP_USER).
    """
    for top in ("etc", "var", "usr", "home", "snap", "tmp"):
        (fs.root / top).mkdir(parents=True, exist_ok=True)
    fs.path("/tmp").chmod(0o1777)
    ids = fs.ids
    shadow_pw = password_hash or "*"
    system = [("maas", ids.maas, "/var/lib/maas")] + ([(layouts.DHCP_USER, ids.dhcpd, "/var/run")] if dhcpd else [])
    extra = {
        "passwd": f"{LOGIN_USER}:x:{ids.user}:{ids.user}::/home/{LOGIN_USER}:/bin/bash\n"
                  + "".join(f"{u}:x:{i}:{i}::{home}:/usr/sbin/nologin\n" for u, i, home in system),
        "group": f"{LOGIN_USER}:x:{ids.user}:\n" + "".join(f"{u}:x:{i}:\n" for u, i, _ in system),
        "shadow": f"{LOGIN_USER}:{shadow_pw}:19000:0:99999:7:::\n"
                  + "".join(f"{u}:*:19000:0:99999:7:::\n" for u, _, _ in system),
        "gshadow": f"{LOGIN_USER}:!::\n" + "".join(f"{u}:!::\n" for u, _, _ in system),
    }
    ours = {LOGIN_USER, "maas", layouts.DHCP_USER}
    for f, lines in extra.items():
        src = etc / f
        mode = src.stat().st_mode & 0o777
        fs.write(f"/etc/{f}", _without(src.read_text(), ours) + lines, owner="root", mode=mode)
        st = src.stat()
        os.chown(fs.path(f"/etc/{f}"), st.st_uid, st.st_gid)
    fs.write("/etc/hostname", f"{name}\n")
    fs.write("/etc/hosts", "127.0.0.1 localhost\n" + "".join(f"{a} {h}\n" for h, a in hosts.items()))
    rule = "NOPASSWD: ALL" if password_hash is None else "ALL"
    fs.write("/etc/sudoers.d/90-lab-user", f"{LOGIN_USER} ALL=(ALL:ALL) {rule}\n", mode=0o440)
    # As Ubuntu's sudoers has it, so snap commands resolve under sudo.
    fs.write("/etc/sudoers.d/00-snap-path",
             'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin"\n',
             mode=0o440)
    home = f"/home/{LOGIN_USER}"
    fs.mkdir(home, owner=f"{LOGIN_USER}:{LOGIN_USER}", mode=0o750)
    fs.mkdir(f"{home}/.ssh", owner=f"{LOGIN_USER}:{LOGIN_USER}", mode=0o700)
    fs.write(f"{home}/.ssh/authorized_keys", authorized_key, owner=f"{LOGIN_USER}:{LOGIN_USER}", mode=0o600)
    fs.write(f"{home}/.profile", 'PATH="$PATH:/snap/bin"\nexport PAGER=cat\n',
             owner=f"{LOGIN_USER}:{LOGIN_USER}")


def write_sshd(fs: HostFS, address: str, allow_from: str | None) -> None:
    """sshd_config and an ed25519 host key; ``allow_from`` limits logins to one client address."""
    key = fs.path("/etc/ssh/ssh_host_ed25519_key")
    key.parent.mkdir(parents=True, exist_ok=True)
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key))
    allow = f"{LOGIN_USER}@{allow_from}" if allow_from else LOGIN_USER
    fs.write("/etc/ssh/sshd_config", f"""\
Port 22
ListenAddress {address}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
AllowUsers {allow}
AllowTcpForwarding yes
MaxStartups 100:30:200
MaxSessions 64
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
""")


def host_key(fs: HostFS) -> str:
    """The host's public key line (type and base64)."""
    return " ".join(fs.path("/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])


def write_standins(fs: HostFS, profile: Profile | None) -> None:
    """Install the stand-ins for MAAS's own programs where the real ones live.

    Every host gets systemctl and snap (as an Ubuntu box has); MAAS's own
    commands only where that install type puts them. ``None``: no MAAS.
    """
    fs.write("/usr/lib/maas-lab/common.sh", (STANDINS / "common.sh").read_text())
    fs.write("/usr/lib/maas-lab/regiond-api", (STANDINS / "regiond-api").read_text(), mode=0o755)
    fs.write("/usr/lib/maas-lab/triggers.sql", (SQL / "triggers.sql").read_text())
    fs.write("/usr/bin/systemctl", (STANDINS / "systemctl").read_text(), mode=0o755)
    fs.write("/usr/bin/snap", (STANDINS / "snap").read_text(), mode=0o755)
    if profile is None:
        return
    if profile.install == "deb":
        for prog in ("maas-region", "maas-rack"):
            fs.write(f"/usr/sbin/{prog}", (STANDINS / prog).read_text(), mode=0o755)
    else:
        fs.write("/snap/bin/maas", (STANDINS / "maas").read_text(), mode=0o755)


def write_dpkg_status(fs: HostFS, profile: Profile, roles: frozenset[str], secondary: bool = False) -> None:
    """The host's own dpkg database: this machine's packages plus its MAAS packages.

    A ``secondary`` region has maas-region-api alone (no local PostgreSQL, no dbconfig).
    """
    status = Path("/var/lib/dpkg/status").read_text().rstrip("\n") + "\n"
    if profile.install == "deb":
        names = list(layouts.DEB_COMMON_PACKAGES)
        if "region" in roles:
            names += layouts.DEB_REGION_PACKAGES[:1] if secondary else layouts.DEB_REGION_PACKAGES
        if "rack" in roles:
            names += layouts.DEB_RACK_PACKAGES
        for pkg in names:
            status += (f"\nPackage: {pkg}\nStatus: install ok installed\nPriority: optional\n"
                       f"Section: net\nInstalled-Size: 1024\nMaintainer: MAAS Developers "
                       f"<maas-devel@lists.launchpad.net>\nArchitecture: all\nSource: maas\n"
                       f"Version: {profile.version}\nDescription: {pkg} (maasops lab stand-in)\n")
    fs.write("/var/lib/dpkg/status", status)


def _random_file(fs: HostFS, host_path: str, size: int, owner: str, sparse_to: int = 0) -> None:
    p = fs.write(host_path, os.urandom(size), owner=owner)
    if sparse_to:
        os.truncate(p, sparse_to)


def write_maas(fs: HostFS, name: str, profile: Profile, roles: frozenset[str], region: dict,
               maas_url: str, secondary: bool = False) -> None:
    """MAAS's own files at the layout's paths: config, secret, maas_id, caches, images.

    ``region`` holds the deployment's secret and database settings as region1 has them.
    """
    lay = profile.layout
    if profile.install == "snap":
        rev = profile.snap_revision
        fs.write(f"/snap/maas/{rev}/meta/snap.yaml",
                 f"name: maas\nversion: {profile.version}\nconfinement: strict\n")
        fs.mkdir(f"/snap/maas/{rev}/etc/maas")
        fs.write(f"/snap/maas/{rev}/etc/maas/templates.yaml", "# read-only snap content\n")
        fs.symlink(layouts.SNAP_ROOT, rev)
        fs.mkdir(f"/var/snap/maas/{rev}")
        fs.symlink(layouts.SNAP_DATA, rev)
        fs.write(lay.snap_mode, layouts.snap_mode_for(roles))
        if lay.certificates:  # pebble's state is in $SNAP_COMMON/pebble (snapcraft.yaml @ 3.5)
            fs.write(f"{layouts.SNAP_COMMON}/pebble/layers/001-maas.yaml", "# generated by maas\n")
        else:
            fs.write(f"{layouts.SNAP_DATA}/supervisord/supervisord.conf", "# generated by maas\n")
    state_dir = str(Path(lay.secret).parent)
    if profile.install == "deb":
        conf_dir = str(Path(lay.regiond_conf).parent)
        fs.mkdir(conf_dir)
        fs.write(f"{conf_dir}/preseeds/curtin_userdata", "#cloud-config\n# lab preseed\n")
    fs.mkdir(state_dir, owner="maas:maas" if profile.install == "deb" else "root")
    fs.write(lay.secret, region["secret"], owner=lay.state_owner, mode=0o640)
    fs.write(lay.maas_id, secrets.token_hex(3), owner=lay.state_owner, mode=0o640)
    if "region" in roles:
        db = region["database"]
        fs.write(lay.regiond_conf, regiond_conf(profile, maas_url, db), owner=lay.conf_owner, mode=0o640)
        if profile.database == "vault":  # what the region reads from Vault instead (the lab's Vault is a file)
            fs.write(VAULT_DATABASE_CREDS, f"name={db['name']}\nuser={db['user']}\npass={db['password']}\n",
                     mode=0o600)
        for conf in () if secondary else lay.region_trees:  # dbconfig comes with maas-region-controller
            fs.write(conf, f"dbc_dbuser='{db['user']}'\ndbc_dbpass='{db['password']}'\n"
                           f"dbc_dbname='{db['name']}'\ndbc_dbserver='{db['host']}'\n", mode=0o600)
    if "rack" in roles:
        # A hand-edited rackd.conf (a printf in a runbook) ends without a newline: the lab's rack1 and
        # region1 carry one, so the probe must parse it whatever its last byte is.
        end = "" if name in HAND_EDITED else "\n"
        fs.write(lay.rackd_conf, f"maas_url:\n- {maas_url}{end}", owner=lay.conf_owner, mode=0o640)
        fs.write(f"{state_dir}/dhcpd.conf", "# Generated by MAAS\nauthoritative;\n", owner="root")
        for sub in lay.subtree_owners:  # maas-dhcpd.service's ConditionPathExists: dhcpd.conf, dhcpd-interfaces
            fs.write(f"{state_dir}/dhcpd-interfaces", "eth0\n")
            write_dhcp_leases(fs, sub.path)
    if profile.lxd_certificate:
        write_lxd_certificate(fs, layouts.SNAP_LXD_CERTIFICATES)
    if lay.certificates:
        fs.mkdir(lay.certificates, owner=lay.state_owner, mode=0o750)
        # store_maas_cluster_cert_tuple @ 3.5: cluster.key 0600, cluster.pem and cacerts.pem 0644
        fs.write(f"{lay.certificates}/cluster.pem", secrets.token_hex(512), owner=lay.state_owner, mode=0o644)
        fs.write(f"{lay.certificates}/cluster.key", secrets.token_hex(256), owner=lay.state_owner, mode=0o600)
        fs.write(f"{lay.certificates}/cacerts.pem", secrets.token_hex(512), owner=lay.state_owner, mode=0o644)
    for cache in lay.cache_excludes:
        fs.mkdir(f"{cache}/cache", owner=lay.state_owner)
        _random_file(fs, f"{cache}/cache/squashfs-{name}", 1 << 20, lay.state_owner, BIG_CACHE_BYTES)
        fs.symlink(f"{cache}/current", "cache")
    for images in lay.image_dirs:
        fs.mkdir(images, owner=lay.state_owner)
        for _ in range(2):
            _random_file(fs, f"{images}/{secrets.token_hex(16)}", 4 << 20, lay.state_owner)
    fs.mkdir("/var/log/maas", owner="maas:maas" if profile.install == "deb" else "root")


def write_dhcp_leases(fs: HostFS, leases_dir: str) -> None:
    """A deb rack's DHCP state as maas-dhcp's postinst and maas-dhcpd.service leave it: the directory root:dhcpd
    0775, dhcpd.leases root:dhcpd 0664 (the unit's chown before dhcpd starts), and the copy dhcpd keeps when
    it rewrites the leases, its own (dhcpd -user dhcpd -group dhcpd)."""
    group = f"root:{layouts.DHCP_USER}"
    fs.mkdir(leases_dir, owner=group, mode=0o775)
    lease = ("lease 10.20.0.{n} {{\n  starts 4 2026/11/26 10:00:0{n};\n  binding state active;\n"
             "  hardware ethernet 52:54:00:00:00:0{n};\n}}\n")
    fs.write(f"{leases_dir}/dhcpd.leases", "".join(lease.format(n=n) for n in range(1, 4)), owner=group, mode=0o664)
    fs.write(f"{leases_dir}/dhcpd.leases~", lease.format(n=1), owner=f"{layouts.DHCP_USER}:{layouts.DHCP_USER}",
             mode=0o644)


def write_lxd_certificate(fs: HostFS, cert_dir: str) -> None:
    """The LXD client certificate a snap 2.8-3.0 generated on start (maas_certificates.py): key 0600, the rest
    as the snap's umask leaves them."""
    fs.mkdir(cert_dir, mode=0o755)
    fs.write(f"{cert_dir}/maas.key", secrets.token_hex(256), mode=0o600)
    fs.write(f"{cert_dir}/maas.pub", secrets.token_hex(64), mode=0o644)
    fs.write(f"{cert_dir}/maas.crt", secrets.token_hex(512), mode=0o644)


def regiond_conf(profile: Profile, maas_url: str, db: dict) -> str:
    """regiond.conf as MAAS writes it (yaml.safe_dump: sorted keys) for the profile's kind of database."""
    conf = {"maas_url": maas_url, "database_host": db["host"], "database_port": db["port"],
            "database_name": db["name"], "database_user": db["user"], "database_pass": db["password"]}
    if profile.database == "test-db":  # maascli: postgres:///maasdb?host=$SNAP_COMMON/test-db-socket&user=maas
        conf.update(database_host=layouts.MAAS_TEST_DB_SOCKET)
        del conf["database_pass"]
    elif profile.database == "vault":  # start_up.py: the credentials moved to Vault, blanked here
        conf.update(database_name="''", database_user="''", database_pass="''", vault_url="http://vault.lab:8200",
                    vault_approle_id="lab-approle", vault_secret_id="lab-secret-id", vault_secrets_path="maas",
                    vault_secrets_mount="secret")
    return "".join(f"{k}: {v}\n" for k, v in sorted(conf.items()))


def write_host_env(fs: HostFS, name: str, profile: Profile, roles: frozenset[str], pg_cluster: str) -> None:
    """/etc/maas-lab/host.env: the facts the stand-ins act on, from the layout table."""
    lay = profile.layout
    env = {
        "LAB_HOST": name, "LAB_INSTALL": profile.install, "LAB_ROLES": " ".join(sorted(roles)),
        "LAB_UNITS": " ".join(lay.units(roles)), "LAB_MAAS_VERSION": profile.version,
        "LAB_MAAS_SERIES": series(profile),
        "LAB_REGION_UNIT": lay.region_units[0] if "region" in roles else "",
        "LAB_SECRET_FROM_DB": "1" if profile.layout_version >= layouts.SECRET_FROM_DB_SINCE else "",
        "LAB_SECRET_SQL": secret_sql(lay),
        "LAB_SNAP_REVISION": profile.snap_revision, "LAB_SNAP_CHANNEL": profile.snap_channel,
        "LAB_REGIOND_CONF": lay.regiond_conf, "LAB_RACKD_CONF": lay.rackd_conf,
        "LAB_SECRET": lay.secret, "LAB_MAAS_ID": lay.maas_id, "LAB_SNAP_MODE": lay.snap_mode or "",
        "LAB_STATE_OWNER": lay.state_owner, "LAB_CONF_OWNER": lay.conf_owner,
        "LAB_PG_CLUSTER": pg_cluster, "LAB_DATABASE": profile.database,
        "LAB_DHCP_DIR": next((o.path for o in lay.subtree_owners if o.role in roles), ""),
        "LAB_DHCP_USER": layouts.DHCP_USER, "LAB_VAULT_DATABASE_CREDS": VAULT_DATABASE_CREDS,
        # What the maas snap's mount namespace shows at regiond.conf's database_host (snapcraft.yaml's plug)
        "LAB_TEST_DB_MOUNT": (f"{layouts.MAAS_TEST_DB_SOCKET} {layouts.MAAS_TEST_DB_HOST_SOCKETS}"
                              if profile.database == "test-db" else ""),
    }
    fs.write("/etc/maas-lab/host.env", "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
    fs.mkdir("/etc/maas-lab/fail-start")


def secret_sql(lay: layouts.Layout) -> str:
    """The query that reads the shared secret where this MAAS keeps it in its database."""
    table, key = lay.secret_in_db
    if table == layouts.SECRET_IN_SECRETS[0]:
        return f"SELECT value ->> 'secret' FROM {table} WHERE path = '{key}'"
    return f"SELECT value #>> '{{}}' FROM {table} WHERE name = '{key}'"


def secret_seed(lay: layouts.Layout, secret: str) -> str:
    """SQL that stores the shared secret where this MAAS keeps it."""
    table, key = lay.secret_in_db
    if table == layouts.SECRET_IN_SECRETS[0]:
        return f"INSERT INTO {table} (path, value) VALUES ('{key}', jsonb_build_object('secret', '{secret}'));\n"
    return f"INSERT INTO {table} (name, value) VALUES ('{key}', to_jsonb('{secret}'::text));\n"


def series(profile: Profile) -> str:
    """The migration name the lab's dbupgrade records for a profile's MAAS (major.minor)."""
    return "maas-{}.{}".format(*profile.layout_version)


def remove_tree(root: Path) -> None:
    """Delete a host's tree (after its namespaces are gone)."""
    shutil.rmtree(root, ignore_errors=True)
