"""The local controller lab: bring simulated MAAS hosts up, describe them, tear them down.

Each host is a network namespace on a lab bridge plus a persistent mount and UTS
namespace holding its own files at the real paths, its own sshd and, on the
region that owns the database, its own PostgreSQL cluster. ``lab.json`` in the
lab directory records everything needed to reach or remove it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import json
import os
import secrets
import shlex
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from maasops import layouts
from maasops.lab import hostfs, namespaces, seed
from maasops.lab.namespaces import sh
from maasops.lab.profiles import PROFILES, parse_profiles

STATE_FILE = "lab.json"
BASTION = "bastion"
SIGNER = "maasops-lab"  # the principal the lab's allowed_signers names for the lab key
NODE_TYPES = {frozenset({"rack"}): 2, frozenset({"region"}): 3, frozenset({"region", "rack"}): 4}  # as MAAS lists them
DB_HOST = "db1"  # --dedicated-db: the PostgreSQL host every region uses over the lab network
MOUNTED_TREE = ("rack2",)  # a deb host whose /var/lib/maas is a mount point
OTHER_APP = "billing"  # a "shared" profile's server also holds this application's role and database
OFFSITE_DIR = "/var/lib/offsite"  # on the bastion: where the lab's off-site restic repository lives


@dataclass
class LabHost:
    """One simulated host as recorded in lab.json."""

    name: str
    address: str
    netns: str
    veth: str
    profile: str | None  # None for the bastion
    roles: list[str] = field(default_factory=list)
    owns_db: bool = False
    sudo_password: bool = False


@dataclass
class Lab:
    """A lab that is up: its directory, network and hosts."""

    dir: str
    lab_id: str
    bridge: str
    subnet: str
    pg_version: str
    bastion_only: bool
    hosts: list[LabHost]

    @property
    def path(self) -> Path:
        """The lab directory."""
        return Path(self.dir)

    @property
    def ssh_config(self) -> Path:
        """The ssh_config that reaches every lab host."""
        return self.path / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        """known_hosts vouching for every lab host's key."""
        return self.path / "known_hosts"

    @property
    def inventory(self) -> Path:
        """The lab's deployment in maasops's inventory format."""
        return self.path / "inventory.yaml"

    @property
    def allowed_signers(self) -> Path:
        """Whose signatures the lab's sets are trusted by: the lab's own key (it signs them)."""
        return self.path / "allowed_signers"

    @property
    def signing_key(self) -> Path:
        """The key that signs the lab's sets (and logs in to its hosts)."""
        return self.path / "id_ed25519"

    @property
    def offsite_repo(self) -> str:
        """The lab's off-site restic repository: sftp to the bastion, reached with the lab's ssh_config."""
        return f"sftp:{BASTION}:{OFFSITE_DIR}/restic"

    @property
    def repo_password_file(self) -> Path:
        """The password of the lab's restic repositories."""
        return self.path / "restic_password"

    @property
    def database_password_file(self) -> Path:
        """The password of the MAAS database role, as an operator keeps it (``--database-password-file``)."""
        return self.path / "database_password"

    @property
    def sudo_password_file(self) -> Path:
        """The sudo password of the host that requires one."""
        return self.path / "sudo_password"

    def host(self, name: str) -> LabHost:
        """A host by name (KeyError when the lab has none)."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def ns_files(self, name: str) -> tuple[Path, Path]:
        """The host's mount and UTS namespace files."""
        return self.path / "ns" / f"{name}.mnt", self.path / "ns" / f"{name}.uts"

    def enter(self, name: str) -> list[str]:
        """Command prefix running a command as root inside a host."""
        return namespaces.enter(self.host(name).netns, *self.ns_files(name))

    def run(self, name: str, command: str, input: str | None = None, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a shell command as root inside host ``name`` (locally, not over SSH)."""
        proc = subprocess.run([*self.enter(name), "sh", "-c", command], input=input, text=True,
                              capture_output=True, env={**os.environ, **(env or {})})
        if check and proc.returncode:
            raise RuntimeError(f"{name}: {command!r} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def feed(self, name: str, command: str, chunks: Iterable[str], env: dict[str, str] | None = None) -> None:
        """Run a shell command as root inside host ``name`` with ``chunks`` streamed to its stdin; fail if it fails."""
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([*self.enter(name), "sh", "-c", command], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **(env or {})})
            try:
                for chunk in chunks:
                    proc.stdin.write(chunk.encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            if proc.wait():
                err.seek(0)
                raise RuntimeError(f"{name}: {command!r} failed ({proc.returncode}): {err.read().decode()[-2000:]}")

    def save(self) -> None:
        """Write lab.json (0600)."""
        p = self.path / STATE_FILE
        p.write_text(json.dumps(asdict(self), indent=2))
        p.chmod(0o600)

    @classmethod
    def load(cls, lab_dir: str | Path) -> Lab:
        """Read lab.json from a lab directory (FileNotFoundError when no lab is up there)."""
        data = json.loads((Path(lab_dir).resolve() / STATE_FILE).read_text())
        data["hosts"] = [LabHost(**h) for h in data["hosts"]]
        return cls(**data)


def lab_id_for(lab_dir: Path) -> str:
    """A short id for a lab directory, used in interface and namespace names."""
    return hashlib.sha1(str(lab_dir).encode()).hexdigest()[:6]


def _pick_subnet(lab_id: str) -> ipaddress.IPv4Network:
    used = []
    for line in sh("ip", "-4", "-o", "addr", "show").stdout.splitlines() + \
            sh("ip", "-4", "route", "show").stdout.splitlines():
        for word in line.split():
            try:
                used.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                pass
    start = int(lab_id, 16) % 200
    for k in range(200):
        net = ipaddress.ip_network(f"10.213.{20 + (start + k) % 200}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.213.x.0/24 subnet for the lab")


def _pg_version() -> str:
    versions = sorted((p.name for p in Path("/usr/lib/postgresql").iterdir()
                       if (p / "bin" / "pg_ctl").exists()), key=int)
    if not versions:
        raise RuntimeError("PostgreSQL server is not installed (apt-get install postgresql)")
    return versions[-1]


def _plan_hosts(lab_id: str, net: ipaddress.IPv4Network, regions: int, racks: int, profile: str,
                combined: bool, sudo_password: bool = True, dedicated_db: bool = False) -> list[LabHost]:
    if regions < 1 and not racks:
        raise ValueError("a lab needs at least one region or rack")
    addr = list(net.hosts())
    names = [f"region{i}" for i in range(1, regions + 1)] + [f"rack{i}" for i in range(1, racks + 1)]
    profiles = parse_profiles(profile, names)
    hosts = [LabHost(BASTION, str(addr[1]), f"mo{lab_id}-0", f"mo{lab_id}v0", None)]
    if dedicated_db:  # PostgreSQL on a host of its own: every region reaches it over the network
        hosts.append(LabHost(DB_HOST, str(addr[8]), f"mo{lab_id}-db", f"mo{lab_id}vdb", None, owns_db=True))
    for i, name in enumerate(names, start=1):
        roles = ["region"] if name.startswith("region") else ["rack"]
        if combined and name == "region1":
            roles.append("rack")
        hosts.append(LabHost(name, str(addr[9 + i]), f"mo{lab_id}-{i}", f"mo{lab_id}v{i}",
                             profiles[name].name, roles, owns_db=name == "region1" and not dedicated_db))
    # One host asks for a sudo password: the last rack, or the last region when there is none.
    hosts[-1].sudo_password = sudo_password
    return hosts


def up(lab_dir: str | Path = ".lab", regions: int = 1, racks: int = 2, profile: str = "deb-3.5",
       db_mb: int = 4, combined: bool = False, bastion_only: bool = True, sudo_password: bool = True,
       dedicated_db: bool = False) -> Lab:
    """Bring a lab up (tearing down any lab already in ``lab_dir``) and return it.

    ``sudo_password``: the last host asks for a sudo password, as some real hosts do.
    """
    path = Path(lab_dir).resolve()
    if any(path.is_relative_to(top) for top in namespaces.OVERLAID):
        raise ValueError(f"{path}: a lab cannot live under {', '.join(namespaces.OVERLAID)} (its hosts overlay "
                         "those directories); pick a directory elsewhere")
    if (path / STATE_FILE).exists() or (path / "ns").exists():
        down(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    lab_id = lab_id_for(path)
    net = _pick_subnet(lab_id)
    lab = Lab(str(path), lab_id, f"mo{lab_id}", str(net), _pg_version(), bastion_only,
              _plan_hosts(lab_id, net, regions, racks, profile, combined, sudo_password, dedicated_db))
    lab.save()
    try:
        _build(lab, db_mb)
    except BaseException:
        down(path)
        raise
    return lab


def _build(lab: Lab, db_mb: int) -> None:
    path = lab.path
    key = path / "id_ed25519"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"maasops-lab-{lab.lab_id}", "-f", str(key))
    password = secrets.token_urlsafe(12)
    lab.sudo_password_file.write_text(password)
    lab.sudo_password_file.chmod(0o600)
    lab.repo_password_file.touch(mode=0o600)
    lab.repo_password_file.write_text(secrets.token_urlsafe(24) + "\n")
    password_hash = sh("openssl", "passwd", "-6", "-stdin", input=password).stdout.strip()
    ids = hostfs.free_ids()
    net = ipaddress.ip_network(lab.subnet)
    db_host = next(h for h in lab.hosts if h.owns_db) if any(h.owns_db for h in lab.hosts) else None
    region = {
        "secret": secrets.token_hex(16),
        "database": {"port": layouts.DB_PORT_DEFAULT, "name": layouts.DB_NAME_DEFAULT,
                     "user": layouts.DB_USER_DEFAULT, "password": secrets.token_urlsafe(18)},
    }
    lab.database_password_file.touch(mode=0o600)
    lab.database_password_file.write_text(region["database"]["password"] + "\n")
    first_region = next((h for h in lab.hosts if "region" in h.roles), lab.hosts[-1])
    maas_url = f"http://{first_region.address}:5240/MAAS"
    addresses = {h.name: h.address for h in lab.hosts}
    bastion = lab.host(BASTION)
    namespaces.create_bridge(lab.bridge, f"{next(net.hosts())}/{net.prefixlen}")
    ns_dir = path / "ns"
    namespaces.prepare_ns_dir(ns_dir)
    Path("/snap").mkdir(exist_ok=True)  # mount point for snap hosts' /snap
    known = []
    pg_cluster = f"{lab.pg_version} main"
    for h in lab.hosts:
        fs = hostfs.HostFS(path / "hosts" / h.name / "fs", ids)
        deb_rack = h.profile is not None and PROFILES[h.profile].install == "deb" and "rack" in h.roles
        hostfs.write_base(fs, h.name, h.address, addresses, key.with_suffix(".pub").read_text(),
                          password_hash if h.sudo_password else None, dhcpd=deb_rack)
        allow = bastion.address if lab.bastion_only and h is not bastion else None
        hostfs.write_sshd(fs, h.address, allow)
        known.append(f"{h.name},{h.address} {hostfs.host_key(fs)}\n")
        read_only = []
        if h.profile:
            prof = PROFILES[h.profile]
            roles = frozenset(h.roles)
            hostfs.write_standins(fs, prof)
            # A secondary region is installed as maas-region-api alone (MAAS's HA docs).
            hostfs.write_dpkg_status(fs, prof, roles, secondary=h is not first_region)
            db = dict(region["database"], host="localhost" if h.owns_db else db_host.address)
            hostfs.write_maas(fs, h.name, prof, roles, {**region, "database": db}, maas_url,
                              secondary=h is not first_region and prof.install == "deb")
            hostfs.write_host_env(fs, h.name, prof, roles, pg_cluster if h.owns_db else "")
            if prof.install == "snap":
                read_only.append(f"/snap/maas/{prof.snap_revision}")
        else:
            hostfs.write_standins(fs, None)  # a plain Ubuntu box: systemctl, snap
            cluster = shlex.quote(pg_cluster if h.owns_db else "")
            fs.write("/etc/maas-lab/host.env", f"LAB_HOST={h.name}\nLAB_INSTALL=none\nLAB_UNITS=''\n"
                                               f"LAB_PG_CLUSTER={cluster}\n")
            if h is bastion:  # the off-site target: restic's sftp backend, over this host's own sshd
                fs.mkdir(OFFSITE_DIR, owner=f"{hostfs.LOGIN_USER}:{hostfs.LOGIN_USER}", mode=0o700)
        namespaces.create_netns(h.netns, lab.bridge, h.veth, f"{h.address}/{net.prefixlen}")
        mnt, uts = lab.ns_files(h.name)
        namespaces.create_mountns(h.netns, mnt, uts, h.name, fs.root, path / "hosts" / h.name / "work",
                                  read_only)
        _boot(lab, h, pg_cluster, region, db_mb)
    lab.known_hosts.write_text("".join(known))
    _write_client_files(lab, key)
    for h in lab.hosts:
        _wait_port(h.address, 22)


def _boot(lab: Lab, h: LabHost, pg_cluster: str, region: dict, db_mb: int) -> None:
    """Start what runs on a host: its units' state, PostgreSQL (DB owner), sshd."""
    ver = lab.pg_version
    # The machine's own cluster shows through the overlay: hide it.
    lab.run(h.name, f"rm -rf /etc/postgresql/{ver}/main /var/lib/postgresql/{ver}/main")
    if h.owns_db:
        _start_database(lab, h, pg_cluster, region, db_mb)
    if h.profile:
        # A rack serves DHCPv6 only when configured: it stays inactive, as on most racks.
        units = [u for u in PROFILES[h.profile].layout.units(frozenset(h.roles)) if u != "maas-dhcpd6"]
        started = f"systemctl start {shlex.join(units)}"
        lab.run(h.name, f"{started} && for i in $(seq 100); do systemctl is-active -q {shlex.join(units)} && exit 0;"
                        " sleep 0.1; done; systemctl is-active " + shlex.join(units) + " >&2; exit 1")
    if h.name in MOUNTED_TREE and h.profile and PROFILES[h.profile].install == "deb":
        # Its own volume, as operators give images: a mount point cannot be renamed aside.
        lab.run(h.name, "mount --bind /var/lib/maas /var/lib/maas")
    lab.run(h.name, "/usr/sbin/sshd -f /etc/ssh/sshd_config -E /var/log/sshd.log")


def _start_database(lab: Lab, h: LabHost, pg_cluster: str, region: dict, db_mb: int) -> None:
    db = region["database"]
    ver = lab.pg_version
    # The regions' addresses only (a dedicated server); else the lab's network, as before.
    clients = [f"{r.address}/32" for r in lab.hosts if "region" in r.roles] if not h.profile else [lab.subnet]
    hba = "".join(f"host all all {c} scram-sha-256\n" for c in clients)
    sockets, first = "/var/run/postgresql", ""
    if h.profile and PROFILES[h.profile].database == "test-db":
        # maas-test-db's socket is in its own snap's directory and trusts local connections; the maas snap sees it
        # at regiond.conf's database_host only inside its own mount namespace (the content interface).
        sockets += "," + layouts.MAAS_TEST_DB_HOST_SOCKETS
        lab.run(h.name, f"install -d -o postgres -g postgres {layouts.MAAS_TEST_DB_HOST_SOCKETS}")
        first = f"sed -i '1i local all {db['user']} trust' /etc/postgresql/{ver}/main/pg_hba.conf && "
    lab.run(h.name, f"pg_createcluster -p {db['port']} -o listen_addresses='localhost,{h.address}' "
                    f"-o unix_socket_directories='{sockets}' {ver} main >/dev/null && {first}"
                    f"cat >> /etc/postgresql/{ver}/main/pg_hba.conf && pg_ctlcluster {pg_cluster} start", input=hba)
    other = ""
    if h.profile and PROFILES[h.profile].database == "shared":  # another application's role and database
        other = (f"CREATE ROLE {OTHER_APP} LOGIN PASSWORD '{secrets.token_urlsafe(12)}';\n"
                 f"CREATE DATABASE {OTHER_APP} OWNER {OTHER_APP};\n\\c {OTHER_APP}\n"
                 f"CREATE TABLE invoices (id serial PRIMARY KEY, total numeric);\nALTER TABLE invoices OWNER TO "
                 f"{OTHER_APP};\nINSERT INTO invoices (total) SELECT i FROM generate_series(1, 100) i;\n")
    lab.run(h.name, f"runuser -u {layouts.PG_SUPERUSER} -- psql -X -q -v ON_ERROR_STOP=1",
            input=f"CREATE ROLE {db['user']} LOGIN PASSWORD '{db['password']}';\n"
                  f"CREATE DATABASE {db['name']} OWNER {db['user']};\n{other}")
    sql = resources.files("maasops.lab") / "sql"
    regions = [PROFILES[r.profile] for r in lab.hosts if "region" in r.roles]
    # The database is as upgraded as every region's MAAS needs it, and holds the images while no region is 3.5+.
    migrated = ", ".join(sorted({f"('maasserver', '{hostfs.series(p)}')" for p in regions}))
    images_in_db = max(p.layout_version for p in regions) <= layouts.IMAGES_IN_DB_UNTIL
    controllers = [(c.name, NODE_TYPES[frozenset(c.roles)]) for c in lab.hosts if c.roles]
    head = (sql / "schema.sql").read_text() + f"""
{hostfs.secret_seed(PROFILES[_first_region(lab).profile].layout, region["secret"])}
INSERT INTO maasserver_config (name, value) VALUES
    ('maas_name', '"{h.name}"'), ('commissioning_distro_series', '"jammy"');
INSERT INTO django_migrations (app, name)
    SELECT 'maasserver', lpad(i::text, 4, '0') || '_lab' FROM generate_series(1, 300) i;
INSERT INTO django_migrations (app, name) VALUES {migrated};
SELECT setval('maasserver_zone_serial_seq', 42);
"""
    body = seed.statements(db_mb, images_in_db, controllers)
    tail = (sql / "triggers.sql").read_text() + "ANALYZE;\n"
    lab.feed(h.name, f"psql -X -q -v ON_ERROR_STOP=1 -h localhost -U {db['user']} {db['name']}",
             itertools.chain([head], body, [tail]), env={"PGPASSWORD": db["password"]})


def _first_region(lab: Lab) -> LabHost:
    return next(h for h in lab.hosts if "region" in h.roles)


def _write_client_files(lab: Lab, key: Path) -> None:
    lines = []
    for h in lab.hosts:
        lines += [f"Host {h.name}", f"    HostName {h.address}"]
        if lab.bastion_only and h.name != BASTION:
            lines.append(f"    ProxyJump {BASTION}")
        lines.append("")
    lines += [f"Host {' '.join(h.name for h in lab.hosts)}", f"    User {hostfs.LOGIN_USER}",
              f"    IdentityFile {key}", "    IdentitiesOnly yes", f"    UserKnownHostsFile {lab.known_hosts}",
              "    StrictHostKeyChecking yes", "    ConnectTimeout 10", ""]
    lab.ssh_config.write_text("\n".join(lines))
    public = key.with_suffix(".pub").read_text().split()
    lab.allowed_signers.write_text(f"{SIGNER} {public[0]} {public[1]}\n")
    inventory = {
        "deployment": "lab",
        "defaults": {"user": hostfs.LOGIN_USER, "ssh_config": lab.ssh_config.name, "signing_key": key.name,
                     "allowed_signers": lab.allowed_signers.name},
        "hosts": {},
    }
    for h in lab.hosts:
        if h.profile is None:
            continue
        prof = PROFILES[h.profile]
        entry: dict = {"roles": h.roles, "install": prof.install,
                       "version": ".".join(map(str, layouts.parse_version(prof.version)))}
        if h.sudo_password:
            entry["sudo_password_file"] = lab.sudo_password_file.name
        inventory["hosts"][h.name] = entry
    lab.inventory.write_text("# The lab's deployment, written by `fab lab.up`.\n"
                             + yaml.safe_dump(inventory, sort_keys=False))
    for p in (lab.ssh_config, lab.known_hosts, lab.inventory, lab.allowed_signers):
        p.chmod(0o600)


def _wait_port(address: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{address}:{port} did not open within {timeout}s") from None
            time.sleep(0.05)


def down(lab_dir: str | Path = ".lab") -> list[str]:
    """Tear a lab down: stop its processes, remove namespaces, bridge and files.

    Works from lab.json and also removes namespaces of this lab directory that
    lab.json does not list (a crashed ``up``). Returns the namespaces removed.
    """
    path = Path(lab_dir).resolve()
    lab_id = lab_id_for(path)
    ns_dir = path / "ns"
    bridge = f"mo{lab_id}"
    try:
        lab = Lab.load(path)
        hosts = [(h.netns, *lab.ns_files(h.name)) for h in lab.hosts]
        bridge = lab.bridge  # the directory may have been moved since up
    except FileNotFoundError:
        hosts = []
    listed = {netns for netns, _, _ in hosts}
    for line in sh("ip", "netns", "list").stdout.splitlines():
        netns = line.split()[0]
        if netns.startswith(f"mo{lab_id}-") and netns not in listed:
            hosts.append((netns, ns_dir / f"{netns}.mnt", ns_dir / f"{netns}.uts"))
    for netns, mnt, uts in hosts:
        namespaces.kill_all(lambda netns=netns, mnt=mnt: namespaces.pids_in(netns, mnt))
        namespaces.destroy(netns, mnt, uts)
    if ns_dir.exists():
        for p in ns_dir.iterdir():
            if namespaces.is_mountpoint(p):
                sh("umount", str(p))
        if namespaces.is_mountpoint(ns_dir):
            sh("umount", str(ns_dir))
    if Path("/sys/class/net", bridge).exists():
        sh("ip", "link", "del", bridge)
    hostfs.remove_tree(path)
    return [netns for netns, _, _ in hosts]


def status(lab_dir: str | Path = ".lab") -> list[dict]:
    """Per host: name, address, profile, roles and whether its sshd and database answer."""
    lab = Lab.load(lab_dir)
    rows = []
    for h in lab.hosts:
        try:
            with socket.create_connection((h.address, 22), timeout=1):
                sshd = "up"
        except OSError:
            sshd = "down"
        db = ""
        if h.owns_db:
            rc = lab.run(h.name, f"pg_ctlcluster {lab.pg_version} main status", check=False).returncode
            db = "up" if rc == 0 else "down"
        rows.append({"host": h.name, "address": h.address, "profile": h.profile or "-",
                     "roles": ",".join(h.roles) or "bastion", "sshd": sshd, "postgresql": db})
    return rows
