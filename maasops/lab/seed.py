"""MAAS-like content for the lab's database, sized so that its dump is about ``db_mb`` MiB raw.

What a region's database holds after a while, as rows of the lab's schema
(``sql/schema.sql``): the controllers and machines with their BMC's power
parameters, hardware (interfaces, disks, metadata), tags, IP addresses and DHCP
leases, DNS records and publications, DHCP snippets, events, and the output of
commissioning, testing and installation scripts (bytea, as MAAS keeps it: the
combined output, stdout, stderr and a YAML result), and the boot resources. Up
to MAAS 3.4 (:data:`maasops.layouts.IMAGES_IN_DB_UNTIL`) each boot resource
file's bytes are a PostgreSQL large object: random bytes, as kernels, initrds
and squashfs images are already compressed; they make up :data:`IMAGE_SHARE`
of the dump, as synced images dominate such a database. From 3.5 the database
only records them (their bytes are files in image-storage).

Every value is made up here, from a generator seeded by ``db_mb``: the same size
gives the same content. Each row is produced as the COPY line ``pg_dump`` prints
for it (bytea as ``\\\\x`` and hex), so the bytes of those lines, plus the
schema's own (:data:`SCHEMA_DUMP_BYTES`), are the dump's raw size.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

MIB = 1 << 20
IMAGE_SHARE = 0.75  # of the dump, when images are in the database
SCHEMA_DUMP_BYTES = 94_000  # DDL, triggers, views, sequence values and headers of a dump of the lab's schema
MIN_MACHINES = 10  # tests address machines by id; a tiny database still has some
FLUSH_BYTES = 4 * MIB  # COPY blocks are sent once this much is buffered
LO_CHUNK = MIB  # bytes of a large object sent per statement
LO_DUMP_LINE = 16384  # pg_dump writes large objects in lowrite() calls of this many bytes ...
LO_DUMP_LINE_EXTRA = 34  # ... each line adding this much around the hex
START = datetime(2023, 6, 1, tzinfo=UTC)

ADJECTIVES = ("able", "brave", "calm", "daring", "eager", "fair", "gentle", "happy", "jolly", "keen", "lively",
              "merry", "noble", "proud", "quick", "rapid", "sharp", "tidy", "vivid", "wise", "bold", "crisp")
ANIMALS = ("ant", "bass", "cat", "deer", "eagle", "fox", "gnu", "hare", "ibis", "jay", "kiwi", "lynx", "mole",
           "newt", "owl", "puma", "quail", "ram", "seal", "toad", "vole", "wren", "yak", "zebra", "crab", "mink")
SYSTEMS = (("Dell Inc.", "PowerEdge R640", "PowerEdge"), ("HPE", "ProLiant DL360 Gen10", "ProLiant"),
           ("Supermicro", "SYS-1029P-WTR", "SMC X11"), ("Lenovo", "ThinkSystem SR650", "ThinkSystem"),
           ("Cisco Systems Inc", "UCSC-C220-M5SX", "UCS C-Series"))
CPUS = (("Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", "GenuineIntel", 2100, 16),
        ("Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz", "GenuineIntel", 2200, 12),
        ("AMD EPYC 7452 32-Core Processor", "AuthenticAMD", 2350, 32),
        ("Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "GenuineIntel", 2400, 14))
CPU_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse "
             "sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl "
             "xtopology nonstop_tsc cpuid aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 "
             "sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx "
             "f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb cat_l3 cdp_l3 invpcid_single pti intel_ppin "
             "ssbd mba ibrs ibpb stibp tpr_shadow vnmi flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 hle "
             "avx2 smep bmi2 erms invpcid rtm cqm mpx rdt_a avx512f avx512dq rdseed adx smap clflushopt clwb "
             "intel_pt avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves cqm_llc cqm_occup_llc").split()
NICS = (("Intel Corporation", "8086", "Ethernet Controller X710 for 10GbE SFP+", "1572", "i40e", 10000),
        ("Mellanox Technologies", "15b3", "MT27710 Family [ConnectX-4 Lx]", "1015", "mlx5_core", 25000),
        ("Broadcom Inc. and subsidiaries", "14e4", "NetXtreme BCM5720 Gigabit Ethernet PCIe", "165f", "tg3", 1000),
        ("Intel Corporation", "8086", "I350 Gigabit Network Connection", "1521", "igb", 1000))
DISKS = (("SAMSUNG MZ7LH480HAHQ-00005", 480103981056, "ssd"), ("INTEL SSDSC2KB960G8", 960197124096, "ssd"),
         ("ST4000NM0035-1V4107", 4000787030016, "rotary"), ("MICRON_5300_MTFDDAK1T9TDS", 1920383410176, "ssd"))
PCI_CLASSES = (("Host bridge", "Sky Lake-E DMI3 Registers"), ("PCI bridge", "Sky Lake-E PCI Express Root Port A"),
               ("System peripheral", "Sky Lake-E CHA Registers"), ("Performance counters", "Sky Lake-E M3KTI"),
               ("USB controller", "C620 Series Chipset Family USB 3.0 xHCI Controller"),
               ("SATA controller", "C620 Series Chipset Family SATA Controller [AHCI mode]"),
               ("RAID bus controller", "MegaRAID SAS-3 3108 [Invader]"), ("VGA compatible controller",
                                                                         "Integrated Matrox G200eW3 Graphics"),
               ("Communication controller", "C620 Series Chipset Family MEI Controller #1"),
               ("ISA bridge", "C621 Series Chipset LPC/eSPI Controller"))
RELEASES = (("focal", "20.04"), ("jammy", "22.04"), ("noble", "24.04"))
IMAGE_FILES = (("boot-kernel", "boot-kernel", 1), ("boot-initrd", "boot-initrd", 5), ("squashfs", "squashfs", 24))
IMAGE_METADATA_SIZES = {"boot-kernel": 14_237_480, "boot-initrd": 81_332_617, "squashfs": 467_070_976}
STATUSES = ("New", "Commissioning", "Testing", "Ready", "Allocated", "Deploying", "Deployed")
EVENT_TYPES = (
    ("NODE_CHANGED_STATUS", "Node status", 20), ("NODE_PXE_REQUEST", "PXE Request", 10),
    ("NODE_POWER_ON_STARTING", "Powering on", 20), ("NODE_POWERED_ON", "Node powered on", 10),
    ("NODE_POWER_OFF_STARTING", "Powering off", 20), ("NODE_POWERED_OFF", "Node powered off", 10),
    ("NODE_INSTALL_EVENT", "Installation", 10), ("NODE_COMMISSIONING_EVENT", "Commissioning", 10),
    ("SCRIPT_DID_NOT_COMPLETE", "Script", 30), ("REQUEST_NODE_START_COMMISSIONING", "Commissioning", 20),
    ("REQUEST_NODE_START_DEPLOYMENT", "Deploying", 20), ("NODE_TFTP_REQUEST", "TFTP Request", 10),
    ("NODE_HTTP_REQUEST", "HTTP Request", 10), ("CONFIGURING_OS", "Configuring OS", 20),
    ("REBOOTING", "Rebooting", 20), ("LOADING_EPHEMERAL", "Loading ephemeral", 20),
    ("SCRIPT_RESULT_CHANGED_STATUS", "Script result", 10), ("NODE_DEPLOYED", "Deployed", 20))
USER_AGENTS = ("maas-cli/3.4.2", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
               "python-requests/2.31.0", "Terraform/1.6.5 terraform-provider-maas/2.0.0", "")
SCRIPTS = (  # name, title, type (0 commissioning, 2 testing), tags
    ("maas-support-info", "Support information", 0, "commissioning"),
    ("maas-lshw", "Hardware inventory", 0, "commissioning"),
    ("maas-list-modaliases", "Kernel module aliases", 0, "commissioning"),
    ("maas-machine-resources", "Machine resources", 0, "commissioning"),
    ("maas-lsblk", "Block devices", 0, "commissioning"),
    ("maas-ip-addr", "Network addresses", 0, "commissioning"),
    ("maas-capture-lldpd", "LLDP neighbours", 0, "commissioning"),
    ("maas-serial-ports", "Serial ports", 0, "commissioning"),
    ("maas-kernel-cmdline", "Kernel command line", 0, "commissioning"),
    ("smartctl-validate", "Storage SMART data", 2, "storage"),
    ("memtester", "Memory test", 2, "memory"),
    ("stress-ng-cpu-short", "CPU stress test", 2, "cpu"),
)
CURTIN_STAGES = ("early", "partitioning", "network", "extract", "curthooks", "hook", "late")
CURTIN_COMMANDS = (
    "['sgdisk', '--zap-all', '/dev/{disk}']", "['wipefs', '--all', '--force', '/dev/{disk}']",
    "['partprobe', '/dev/{disk}']", "['udevadm', 'settle']", "['mkfs.ext4', '-F', '-q', '-L', 'root', '/dev/{disk}2']",
    "['mount', '/dev/{disk}2', '/tmp/tmpxk2b/target']", "['unsquashfs', '-f', '-d', '/tmp/tmpxk2b/target', "
    "'/media/root-ro/squashfs']", "['chroot', '/tmp/tmpxk2b/target', 'update-initramfs', '-u', '-k', 'all']",
    "['chroot', '/tmp/tmpxk2b/target', 'grub-install', '--target=x86_64-efi', '--efi-directory=/boot/efi']",
    "['blkid', '-o', 'export', '/dev/{disk}1']",
    "['lsblk', '--noheadings', '--bytes', '--pairs', '--output=ALIGNMENT']")


def text(value: str) -> str:
    """A text value as COPY prints it."""
    if "\\" not in value and "\n" not in value and "\t" not in value and "\r" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def field_text(value: object) -> str:
    """One field of a COPY line (None, bool, int, bytes, JSON, text array, or text)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, dict):
        return text(json.dumps(value))
    if isinstance(value, tuple):
        return "{" + ",".join(value) + "}"
    return text(str(value))


@dataclass
class Tables:
    """Rows waiting to be sent, per table, and the bytes of the dump so far."""

    columns: dict[str, tuple[str, ...]]
    dumped: int = SCHEMA_DUMP_BYTES
    ids: dict[str, int] = field(default_factory=dict)
    pending: dict[str, list[str]] = field(default_factory=dict)
    buffered: int = 0

    def add(self, table: str, *values: object) -> int:
        """Queue one row (its id assigned here, first); return the id."""
        row_id = self.ids.get(table, 0) + 1
        self.ids[table] = row_id
        line = "\t".join(map(field_text, (row_id, *values))) + "\n"
        self.pending.setdefault(table, []).append(line)
        self.dumped += len(line)
        self.buffered += len(line)
        return row_id

    def add_raw(self, table: str, fields: str) -> None:
        """Queue one row given as its COPY fields after the id, already escaped."""
        row_id = self.ids.get(table, 0) + 1
        self.ids[table] = row_id
        line = f"{row_id}\t{fields}\n"
        self.pending.setdefault(table, []).append(line)
        self.dumped += len(line)
        self.buffered += len(line)

    def flush(self) -> Iterator[str]:
        """COPY statements for every queued row, tables in the order of ``columns`` (referenced ones first)."""
        for table, lines in sorted(self.pending.items(), key=lambda kv: list(self.columns).index(kv[0])):
            yield f"COPY {table} ({', '.join(('id', *self.columns[table]))}) FROM stdin;\n"
            yield "".join(lines)
            yield "\\.\n"
        self.pending.clear()
        self.buffered = 0

    def sequences(self) -> str:
        """SQL setting each table's id sequence past the ids used."""
        return "".join(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), {n});\n" for t, n in self.ids.items())


COLUMNS: dict[str, tuple[str, ...]] = {
    "auth_user": ("username", "email", "password", "is_superuser", "last_login", "date_joined"),
    "maasserver_sshkey": ("user_id", "key", "created", "updated"),
    "maasserver_versionedtextfile": ("data", "comment", "created"),
    "maasserver_zone": ("name", "description"),
    "maasserver_fabric": ("name", "class_type"),
    "maasserver_space": ("name", "description"),
    "maasserver_vlan": ("fabric_id", "vid", "name", "mtu", "dhcp_on", "space_id", "description"),
    "maasserver_subnet": ("name", "cidr", "vlan_id", "gateway_ip", "dns_servers", "allow_dns", "managed",
                          "description"),
    "maasserver_iprange": ("subnet_id", "type", "start_ip", "end_ip", "comment"),
    "maasserver_domain": ("name", "authoritative", "ttl"),
    "maasserver_dhcpsnippet": ("name", "description", "value_id", "enabled", "subnet_id", "created"),
    "maasserver_bmc": ("power_type", "power_parameters", "created"),
    "maasserver_node": ("system_id", "hostname", "status", "node_type", "zone_id", "domain_id", "bmc_id",
                        "architecture", "osystem", "distro_series", "cpu_count", "cpu_speed", "memory", "power_state",
                        "description", "error_description", "instance_power_parameters", "created", "updated"),
    "maasserver_nodemetadata": ("node_id", "key", "value", "created"),
    "maasserver_tag": ("name", "definition", "comment", "kernel_opts"),
    "maasserver_node_tags": ("node_id", "tag_id"),
    "maasserver_interface": ("name", "type", "mac_address", "node_id", "vlan_id", "params", "vendor", "product",
                             "firmware_version", "link_speed", "interface_speed"),
    "maasserver_staticipaddress": ("ip", "alloc_type", "subnet_id", "interface_id", "lease_time", "created"),
    "maasserver_blockdevice": ("node_id", "name", "id_path", "size", "block_size", "tags", "model", "serial",
                               "firmware_version"),
    "maasserver_dnsresource": ("name", "domain_id", "address_ttl"),
    "maasserver_dnsresource_ip_addresses": ("dnsresource_id", "staticipaddress_id"),
    "maasserver_dnsdata": ("dnsresource_id", "rrtype", "rrdata", "ttl"),
    "maasserver_dnspublication": ("serial", "created", "source"),
    "maasserver_eventtype": ("name", "description", "level"),
    "maasserver_event": ("type_id", "node_id", "node_hostname", "username", "ip_address", "user_agent", "endpoint",
                         "action", "description", "created"),
    "metadataserver_script": ("name", "title", "description", "tags", "script_type", "timeout", "destructive",
                              "script_id"),
    "metadataserver_scriptset": ("node_id", "result_type", "last_ping", "power_state_before_transition", "tags"),
    "metadataserver_scriptresult": ("script_set_id", "script_id", "script_name", "status", "exit_status", "started",
                                    "ended", "parameters", "output", "stdout", "stderr", "result"),
    "maasserver_bootsource": ("url", "keyring_filename", "keyring_data"),
    "maasserver_bootsourceselection": ("boot_source_id", "os", "release", "arches", "subarches", "labels"),
    "maasserver_bootresource": ("rtype", "name", "architecture", "extra", "kflavor", "rolling"),
    "maasserver_bootresourceset": ("resource_id", "version", "label"),
    "maasserver_bootresourcefile": ("resource_set_id", "filename", "filetype", "extra", "largefile_id", "sha256",
                                    "size"),
    "maasserver_bootresourcefilesync": ("file_id", "region_id", "size"),
}


SYSTEM_ID_CHARS = "abcdefghkmnpqrstwxy0123456789"  # MAAS's system_id alphabet


def _system_id(rng, index: int) -> str:
    """A MAAS-like six-character system_id, unique by construction: two random characters, then the index."""
    digits = []
    for _ in range(4):
        index, d = divmod(index, len(SYSTEM_ID_CHARS))
        digits.append(SYSTEM_ID_CHARS[d])
    return "".join(rng.choice(SYSTEM_ID_CHARS) for _ in range(2)) + "".join(reversed(digits))


@dataclass
class Machine:
    """What the generator knows of one machine while writing its rows."""

    node_id: int
    hostname: str
    system_id: str
    vendor: tuple[str, str, str]
    cpu: tuple[str, str, int, int]
    sockets: int
    memory_mib: int
    disks: list[tuple[str, str, int, str, str]]  # name, model, size, kind, serial
    nics: list[tuple[str, str, tuple]]  # name, mac, NICS entry
    ips: list[str]
    clock: float  # seconds since START


class Fleet:
    """The generator: one seeded random source, the tables, the fixed parts of the deployment."""

    def __init__(self, db_mb: int, rows_budget: int):
        self.rng = random.Random(f"maas-lab-{db_mb}")
        self.t = Tables(COLUMNS)
        self.budget = rows_budget
        self.subnets: list[tuple[int, str]] = []
        self.script_ids: dict[str, int] = {}
        self.event_types: dict[str, int] = {}
        self.tags: list[int] = []

    def left(self) -> int:
        """Bytes of the dump still to fill."""
        return self.budget - self.t.dumped

    def hexid(self, n: int) -> str:
        """``n`` random hex digits."""
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def mac(self) -> str:
        """A random locally administered MAC address."""
        b = self.rng.randbytes(5)
        return "52:" + ":".join(f"{x:02x}" for x in b)

    def when(self, m: Machine, seconds: float) -> str:
        """A timestamp ``seconds`` after the machine's clock, which moves on to it."""
        m.clock += seconds
        return stamp(m.clock)


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return (START + timedelta(days=days)).strftime("%Y-%m-%d")


def stamp(seconds: float) -> str:
    """The timestamptz ``seconds`` after START, as pg_dump prints it (UTC)."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    return (f"{_day(days)} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}."
            f"{int((seconds - whole) * 1e6):06d}+00")


def _users_and_network(f: Fleet) -> None:
    """Admins and their keys, zones, fabrics, spaces, VLANs, subnets, ranges, the domain, DHCP snippets."""
    t, rng, now = f.t, f.rng, stamp(0)
    for name in ("admin", "ops", "deployer", "ci-bot"):
        uid = t.add("auth_user", name, f"{name}@example.com", "pbkdf2_sha256$260000$" + f.hexid(22) + "$" +
                    f.hexid(44), name == "admin", now, now)
        for _ in range(2):
            key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rng.randbytes(33).hex() + f" {name}@workstation"
            t.add("maasserver_sshkey", uid, key, now, now)
    for zone in ("default", "rack-a", "rack-b", "rack-c"):
        t.add("maasserver_zone", zone, f"Machines in {zone}")
    fabrics = [t.add("maasserver_fabric", f"fabric-{i}", None) for i in range(3)]
    spaces = [t.add("maasserver_space", s, f"The {s} network") for s in ("management", "storage", "public")]
    vlans = [t.add("maasserver_vlan", fabrics[v % 3], 0 if v < 3 else 100 + v, None if v < 3 else f"vlan{100 + v}",
                   9000 if v % 4 == 1 else 1500, v % 2 == 0, spaces[v % 3], "") for v in range(10)]
    for i in range(1, 21):
        cidr = f"10.{i}.0.0/16"
        sid = t.add("maasserver_subnet", cidr, cidr, vlans[i % 10], f"10.{i}.0.1", ("10.0.0.2", "10.0.0.3"), True,
                    True, f"Rack row {i}")
        f.subnets.append((sid, f"10.{i}"))
        t.add("maasserver_iprange", sid, "dynamic", f"10.{i}.200.1", f"10.{i}.250.254", "PXE and leases")
        t.add("maasserver_iprange", sid, "reserved", f"10.{i}.0.1", f"10.{i}.0.20", "gateways, switches, BMC VIPs")
    t.add("maasserver_domain", "maas", True, 30)
    for i in range(6):
        body = "".join(f"host static-{i}-{j} {{\n  hardware ethernet {f.mac()};\n  fixed-address 10.{i + 1}.1.{j};\n"
                       f"  option host-name \"static-{i}-{j}\";\n}}\n" for j in range(1, 9))
        vid = t.add("maasserver_versionedtextfile", body, f"snippet {i}", now)
        t.add("maasserver_dhcpsnippet", f"static-hosts-{i}", "Hosts outside MAAS", vid, True, f.subnets[i][0], now)


def _catalogue(f: Fleet) -> None:
    """Event types, tags, scripts (their source text) and the boot source."""
    t, now = f.t, stamp(0)
    for name, desc, level in EVENT_TYPES:
        f.event_types[name] = t.add("maasserver_eventtype", name, desc, level)
    for name, xpath in (("virtual", "//node[@class='system']/configuration/setting[@id='virtual']"),
                        ("nvme", "//node[@class='storage']/product[contains(., 'NVMe')]"),
                        ("gpu", "//node[@class='display']"), ("10g", "//capacity[. >= 10000000000]"),
                        ("ceph", ""), ("k8s-worker", ""), ("storage-node", ""), ("compute", "")):
        f.tags.append(t.add("maasserver_tag", name, xpath, f"Machines tagged {name}", ""))
    for name, title, stype, tag in SCRIPTS:
        body = (f"#!/bin/bash\n# --- Start MAAS 1.0 script metadata ---\n# name: {name}\n# title: {title}\n"
                f"# script_type: {stype}\n# tags: {tag}\n# timeout: 00:10:00\n# --- End MAAS 1.0 script metadata "
                "---\nset -euo pipefail\n" + "".join(f"step_{i}() {{\n    echo \"running step {i} of {name}\"\n"
                                                      f"    sleep 0.{i}\n}}\n" for i in range(12)))
        vid = t.add("maasserver_versionedtextfile", body, "", now)
        f.script_ids[name] = t.add("metadataserver_script", name, title, f"{title} of the machine", (tag,), stype,
                                   "00:10:00", False, vid)
    src = t.add("maasserver_bootsource", "http://images.maas.io/ephemeral-v3/stable/",
                "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg", f.rng.randbytes(2400))
    for codename, _ in RELEASES:
        t.add("maasserver_bootsourceselection", src, "ubuntu", codename, ("amd64",), ("*",), ("*",))


def _controllers(f: Fleet, controllers: list[tuple[str, int]]) -> list[int]:
    """The lab's controllers as MAAS lists them (node types 2 rack, 3 region, 4 region+rack); their node ids."""
    now = stamp(0)
    return [f.t.add("maasserver_node", f.hexid(6), name, 6, kind, 1, 1, None, "amd64/generic", "ubuntu", "jammy",
                    8, 2400, 32768, "unknown", "", "", {}, now, now) for name, kind in controllers]


def _images(f: Fleet, images_in_db: bool, image_bytes: int, regions: list[int]) -> Iterator[str]:
    """Boot resources: large objects (and their rows) up to 3.4, rows recording files in image-storage from 3.5."""
    t = f.t
    units = sum(share for _, _, share in IMAGE_FILES) * len(RELEASES)
    for codename, version in RELEASES:
        extra = {"subarches": "generic,hwe-p,hwe-q,hwe-r,hwe-s,hwe-t,hwe-u,hwe-v,hwe-w,ga-" + version,
                 "title": f"Ubuntu {version} LTS"}
        res = t.add("maasserver_bootresource", 1, f"ubuntu/{codename}", f"amd64/ga-{version}", extra, "generic",
                    False)
        rset = t.add("maasserver_bootresourceset", res, "20240301", "stable")
        for filename, filetype, share in IMAGE_FILES:
            if images_in_db:
                size = image_bytes * share // units // 2  # two hex digits a byte in the dump
                sha, largefile = yield from _large_object(f, size)
            else:
                size, sha, largefile = IMAGE_METADATA_SIZES[filetype], f.hexid(64), None
            fid = t.add("maasserver_bootresourcefile", rset, filename, filetype, {"kpackage": "linux-generic"},
                        largefile, sha, size)
            for region in regions if not images_in_db else ():
                t.add("maasserver_bootresourcefilesync", fid, region, size)


def _large_object(f: Fleet, size: int) -> Iterator[str]:
    """SQL creating one large object of ``size`` random bytes and its maasserver_largefile row; (sha256, row id)."""
    digest = hashlib.sha256()
    yield "SELECT lo_create(0) AS lo \\gset\n"
    for offset in range(0, size, LO_CHUNK):
        chunk = f.rng.randbytes(min(LO_CHUNK, size - offset))
        digest.update(chunk)
        yield f"SELECT lo_put(:lo, {offset}, '\\x{chunk.hex()}'::bytea);\n"
    f.t.ids["maasserver_largefile"] = row_id = f.t.ids.get("maasserver_largefile", 0) + 1
    sha = digest.hexdigest()
    yield (f"INSERT INTO maasserver_largefile (id, sha256, total_size, content, size) "
           f"VALUES ({row_id}, '{sha}', {size}, :lo, {size});\n")
    f.t.dumped += 2 * size + (size // LO_DUMP_LINE + 1) * LO_DUMP_LINE_EXTRA + 300
    return sha, row_id


def _machine(f: Fleet, index: int, zone_count: int = 4) -> Machine:
    """One machine's identity rows: BMC, node, metadata, tags, interfaces, addresses, disks, DNS."""
    t, rng = f.t, f.rng
    vendor, cpu = rng.choice(SYSTEMS), rng.choice(CPUS)
    m = Machine(0, f"{rng.choice(ADJECTIVES)}-{rng.choice(ANIMALS)}-{index}", _system_id(rng, index), vendor, cpu,
        rng.choice((1, 2)),
        rng.choice((65536, 131072, 262144, 524288)), [], [], [], index * 10800.0)
    now = stamp(m.clock)
    bmc_ip = f"10.0.{index // 250 % 250}.{index % 250 + 2}"
    bmc = t.add("maasserver_bmc", "ipmi", {
        "power_address": bmc_ip, "power_user": "maas", "power_pass": f.hexid(20), "power_driver": "LAN_2_0",
        "power_boot_type": "efi", "mac_address": f.mac(), "cipher_suite_id": "3", "privilege_level": "OPERATOR",
        "k_g": "", "workaround_flags": ["opensesspriv"]}, now)
    status = rng.choice((4, 4, 6, 6, 6, 6, 10, 11))
    m.node_id = t.add("maasserver_node", m.system_id, m.hostname, status, 0, 1 + index % zone_count, 1, bmc,
                      "amd64/generic", "ubuntu", rng.choice(RELEASES)[0], m.sockets * cpu[3] * 2, cpu[2],
                      m.memory_mib, "on" if status == 6 else "off", f"{vendor[1]} in row {index % 20 + 1}", "", {},
                      now, now)
    for key, value in (("cpu_model", cpu[0]), ("mainboard_vendor", vendor[0]), ("mainboard_product", vendor[1]),
                       ("mainboard_serial", f.hexid(12).upper()), ("mainboard_firmware_version", "2.19.1"),
                       ("mainboard_firmware_date", "06/13/2023"), ("system_vendor", vendor[0]),
                       ("system_product", vendor[1]), ("system_family", vendor[2]), ("system_serial",
                                                                                    f.hexid(7).upper()),
                       ("system_sku", f"SKU={f.hexid(4)};ModelName={vendor[1]}"), ("chassis_type", "Rack Mount "
                                                                                   "Chassis")):
        t.add("maasserver_nodemetadata", m.node_id, key, value, now)
    for tag in rng.sample(f.tags, 2):
        t.add("maasserver_node_tags", m.node_id, tag)
    _machine_network(f, m, index, now)
    for d in range(rng.choice((1, 2, 4))):
        model, size, kind = rng.choice(DISKS)
        serial = f.hexid(14).upper()
        m.disks.append((f"sd{'abcd'[d]}", model, size, kind, serial))
        t.add("maasserver_blockdevice", m.node_id, f"sd{'abcd'[d]}", f"/dev/disk/by-id/wwn-0x5{f.hexid(15)}", size,
              512 if kind == "ssd" else 4096, (kind, "sata"), model, serial, "HXT7404Q")
    return m


def _machine_network(f: Fleet, m: Machine, index: int, now: str) -> None:
    """A machine's interfaces, their sticky addresses and a DHCP lease, and its DNS records."""
    t, rng = f.t, f.rng
    dns = t.add("maasserver_dnsresource", m.hostname, 1, None)
    for n in range(rng.choice((2, 2, 4))):
        nic = rng.choice(NICS)
        sid, prefix = f.subnets[(index + n) % len(f.subnets)]
        mac = f.mac()
        iface = t.add("maasserver_interface", f"eno{n + 1}", "physical", mac, m.node_id, 1 + n % 10,
                      {"mtu": 1500, "autoconf": True, "accept-ra": False, "bridge_stp": False}, nic[0], nic[2],
                      f"{rng.randint(1, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}", nic[5], nic[5])
        ip = f"{prefix}.{1 + index // 200 % 199}.{2 + index % 200}"
        m.nics.append((f"eno{n + 1}", mac, nic))
        m.ips.append(ip)
        static = t.add("maasserver_staticipaddress", ip, 1, sid, iface, 0, now)
        t.add("maasserver_staticipaddress", f"{prefix}.{200 + rng.randint(0, 50)}.{rng.randint(1, 254)}", 6, sid,
              iface, 600, now)
        t.add("maasserver_dnsresource_ip_addresses", dns, static)
    t.add("maasserver_dnsdata", dns, "TXT", f"\"owner={rng.choice(('team-a', 'team-b', 'ci'))} asset={f.hexid(8)}\"",
          None)
    if index % 5 == 0:
        t.add("maasserver_dnsdata", dns, "SRV", f"0 5 5060 {m.hostname}.maas", 300)


def _events(f: Fleet, m: Machine, count: int) -> None:
    """The machine's life as MAAS logs it: status changes, power, PXE and HTTP requests, script results."""
    t, rng = f.t, f.rng
    previous = "New"
    for n in range(count):
        if f.left() <= 0:
            return
        kind = rng.choice(EVENT_TYPES)[0]
        if kind == "NODE_CHANGED_STATUS":
            status = STATUSES[(STATUSES.index(previous) + 1) % len(STATUSES)]
            desc, previous = f"From '{previous}' to '{status}'", status
        elif kind in ("NODE_PXE_REQUEST", "NODE_TFTP_REQUEST", "NODE_HTTP_REQUEST"):
            desc = rng.choice(("/images/ubuntu/amd64/ga-22.04/jammy/stable/boot-initrd",
                               f"/grub/grub.cfg-{m.nics[0][1]}", "pxelinux.0", "/ipxe.cfg", "bootx64.efi"))
        elif kind == "SCRIPT_RESULT_CHANGED_STATUS":
            desc = f"{rng.choice(SCRIPTS)[0]} changed status from 'Running' to 'Passed'"
        else:
            desc = rng.choice(("", f"Started by {rng.choice(('admin', 'ops', 'deployer'))}",
                               f"cloudinit: running modules for config on {m.hostname}",
                               f"Power state queried: on (driver ipmi, {m.ips[0]})"))
        ip = f"10.0.255.{rng.randint(2, 250)}" if n % 3 == 0 else "\\N"
        t.add_raw("maasserver_event", f"{f.event_types[kind]}\t{m.node_id}\t{m.hostname}\t"
                  f"{rng.choice(('admin', 'ops', ''))}\t{ip}\t{rng.choice(USER_AGENTS)}\t{n % 3}\t"
                  f"{kind.lower().replace('_', ' ')}\t{desc}\t{f.when(m, rng.uniform(1, 90))}")
        if n % 40 == 0:
            t.add("maasserver_dnspublication", 2023060100 + t.ids.get("maasserver_dnspublication", 0), stamp(m.clock),
                  f"ip {m.ips[0]} connected to {m.hostname} on {m.nics[0][0]}")


def lshw(f: Fleet, m: Machine) -> str:
    """lshw -xml, as commissioning records it."""
    rng, (vendor, product, family) = f.rng, m.vendor
    out = [f'<?xml version="1.0" standalone="yes" ?>\n<!-- generated by lshw-B.02.19.2 -->\n<list>\n'
           f'<node id="{m.hostname}" claimed="true" class="system" handle="DMI:0100">\n'
           f' <description>Rack Mount Chassis</description>\n <product>{product}</product>\n'
           f' <vendor>{vendor}</vendor>\n <serial>{f.hexid(7).upper()}</serial>\n <width units="bits">64</width>\n'
           f' <configuration>\n  <setting id="boot" value="normal" />\n  <setting id="family" value="{family}" />\n'
           f'  <setting id="uuid" value="{f.hexid(8)}-{f.hexid(4)}-{f.hexid(4)}-{f.hexid(4)}-{f.hexid(12)}" />\n'
           ' </configuration>\n']
    for s in range(m.sockets):
        flags = [c for c in CPU_FLAGS if rng.random() > 0.05]
        out.append(f' <node id="cpu:{s}" claimed="true" class="processor" handle="DMI:00{40 + s}">\n'
                   f'  <description>CPU</description>\n  <product>{m.cpu[0]}</product>\n'
                   f'  <vendor>{m.cpu[1]}</vendor>\n  <slot>CPU{s + 1}</slot>\n'
                   f'  <size units="Hz">{m.cpu[2] * 1000000}</size>\n  <capabilities>\n' +
                   "".join(f'   <capability id="{c}" />\n' for c in flags) + '  </capabilities>\n </node>\n')
    for bank in range(rng.choice((8, 12, 16))):
        out.append(f' <node id="bank:{bank}" claimed="true" class="memory" handle="DMI:11{bank:02d}">\n'
                   f'  <description>DIMM DDR4 Synchronous Registered (Buffered) 2666 MHz (0.4 ns)</description>\n'
                   f'  <product>M393A4K40CB2-CTD</product>\n  <vendor>Samsung</vendor>\n'
                   f'  <physid>{bank}</physid>\n  <serial>{f.hexid(8).upper()}</serial>\n'
                   f'  <slot>{"AB"[bank % 2]}{bank // 2 + 1}</slot>\n  <size units="bytes">34359738368</size>\n'
                   f'  <width units="bits">64</width>\n  <clock units="Hz">2666000000</clock>\n </node>\n')
    for dev in range(rng.randint(20, 40)):
        cls, desc = rng.choice(PCI_CLASSES)
        bus = f"0000:{rng.randint(0, 0xd7):02x}:{rng.randint(0, 31):02x}.{rng.randint(0, 7)}"
        out.append(f' <node id="pci:{dev}" claimed="true" class="bridge" handle="PCI:{bus}">\n'
                   f'  <description>{cls}</description>\n  <product>{desc}</product>\n'
                   f'  <vendor>Intel Corporation</vendor>\n  <businfo>pci@{bus}</businfo>\n'
                   f'  <version>{rng.randint(0, 9):02x}</version>\n  <width units="bits">32</width>\n'
                   f'  <clock units="Hz">33000000</clock>\n  <configuration>\n   <setting id="driver" '
                   f'value="pcieport" />\n  </configuration>\n </node>\n')
    for name, mac, nic in m.nics:
        out.append(f' <node id="network" claimed="true" class="network" handle="PCI:0000:18:00.{name[-1]}">\n'
                   f'  <description>Ethernet interface</description>\n  <product>{nic[2]}</product>\n'
                   f'  <vendor>{nic[0]}</vendor>\n  <logicalname>{name}</logicalname>\n  <serial>{mac}</serial>\n'
                   f'  <capacity>{nic[5] * 1000000}</capacity>\n  <configuration>\n'
                   f'   <setting id="driver" value="{nic[4]}" />\n   <setting id="link" value="yes" />\n'
                   f'  </configuration>\n </node>\n')
    for name, model, size, _, serial in m.disks:
        out.append(f' <node id="disk" claimed="true" class="disk" handle="SCSI:00:00:00:00">\n'
                   f'  <description>ATA Disk</description>\n  <product>{model}</product>\n'
                   f'  <logicalname>/dev/{name}</logicalname>\n  <serial>{serial}</serial>\n'
                   f'  <size units="bytes">{size}</size>\n </node>\n')
    out.append("</node>\n</list>\n")
    return "".join(out)


def resources(f: Fleet, m: Machine) -> str:
    """The machine-resources JSON (CPU threads, memory, NICs, disks, PCI), as commissioning records it."""
    rng, cores = f.rng, m.cpu[3]
    cpu = {"architecture": "x86_64", "sockets": [{
        "name": m.cpu[0], "vendor": m.cpu[1], "socket": s, "cache": [
            {"level": 1, "type": "Data", "size": 32768}, {"level": 2, "type": "Unified", "size": 1048576}],
        "cores": [{"core": c, "die": 0, "threads": [
            {"id": s * cores * 2 + c * 2 + h, "numa_node": s, "thread": h, "online": True, "isolated": False}
            for h in range(2)], "frequency": m.cpu[2] + rng.randint(-50, 900)} for c in range(cores)],
        "frequency": m.cpu[2], "frequency_turbo": m.cpu[2] + 1600} for s in range(m.sockets)],
        "total": m.sockets * cores * 2}
    pci = [{"driver": rng.choice(("pcieport", "xhci_hcd", "ahci", "megaraid_sas", "mgag200")), "driver_version": "",
            "numa_node": 0, "pci_address": f"0000:{rng.randint(0, 0xd7):02x}:{rng.randint(0, 31):02x}.0",
            "vendor": "Intel Corporation", "vendor_id": "8086", "product": rng.choice(PCI_CLASSES)[1],
            "product_id": f.hexid(4), "iommu_group": rng.randint(0, 120), "vpd": {}}
           for _ in range(rng.randint(20, 40))]
    doc = {"api_extensions": ["resources", "resources_v2", "resources_disk_sata", "resources_usb_pci"],
           "resources": {"cpu": cpu, "memory": {"nodes": [{"numa_node": s, "hugepages_used": 0, "hugepages_total": 0,
                                                          "used": rng.randint(1, 9) << 30,
                                                          "total": (m.memory_mib << 20) // m.sockets}
                                                         for s in range(m.sockets)],
                                                "total": m.memory_mib << 20},
                         "network": {"cards": [{"driver": nic[4], "driver_version": "5.15.0-91-generic",
                                                "ports": [{"id": name, "address": mac, "port": 0,
                                                           "protocol": "ethernet", "auto_negotiation": True,
                                                           "link_detected": True, "link_speed": nic[5],
                                                           "link_duplex": "full"}],
                                                "vendor": nic[0], "vendor_id": nic[1], "product": nic[2],
                                                "product_id": nic[3], "firmware_version": "8.50 0x8000b6e5"}
                                               for name, mac, nic in m.nics], "total": len(m.nics)},
                         "storage": {"disks": [{"id": name, "device": f"8:{i * 16}", "model": model, "type": "scsi",
                                                "read_only": False, "size": size, "removable": False,
                                                "rpm": 0 if kind == "ssd" else 7200, "serial": serial,
                                                "block_size": 512, "device_path": f"pci-0000:00:17.0-ata-{i + 1}"}
                                               for i, (name, model, size, kind, serial) in enumerate(m.disks)],
                                     "total": len(m.disks)},
                         "pci": {"devices": pci, "total": len(pci)}},
           "networks": {name: {"addresses": [{"family": "inet", "address": ip, "netmask": "16", "scope": "global"}],
                               "hwaddr": mac, "mtu": 1500, "state": "up", "type": "broadcast"}
                        for (name, mac, _), ip in zip(m.nics, m.ips, strict=True)}}
    return json.dumps(doc, indent=1)


def support_info(f: Fleet, m: Machine) -> str:
    """uname, os-release, dmidecode and lspci, as the support-info script prints them."""
    rng = f.rng
    lines = [f"-----BEGIN KERNEL INFO-----\nLinux {m.hostname} 5.15.0-91-generic #101-Ubuntu SMP x86_64 GNU/Linux\n"
             "-----END KERNEL INFO-----\n-----BEGIN DMI DATA-----\n"]
    for handle in range(rng.randint(30, 60)):
        lines.append(f"Handle 0x{handle:04X}, DMI type {rng.randint(0, 41)}, {rng.randint(8, 120)} bytes\n"
                     f"\tManufacturer: {m.vendor[0]}\n\tProduct Name: {m.vendor[1]}\n"
                     f"\tSerial Number: {f.hexid(10).upper()}\n\tVersion: {rng.randint(1, 3)}.{rng.randint(0, 20)}\n")
    lines.append("-----END DMI DATA-----\n-----BEGIN PCI INFO-----\n")
    for _ in range(rng.randint(20, 40)):
        cls, desc = rng.choice(PCI_CLASSES)
        lines.append(f"{rng.randint(0, 0xd7):02x}:{rng.randint(0, 31):02x}.{rng.randint(0, 7)} {cls} [0604]: "
                     f"Intel Corporation {desc} [8086:{f.hexid(4)}] (rev {rng.randint(0, 9):02x})\n")
    return "".join(lines) + "-----END PCI INFO-----\n"


def modaliases(f: Fleet, m: Machine) -> str:
    """The kernel's modalias lines for the machine's devices."""
    return "".join(f"pci:v00008086d0000{f.hexid(4).upper()}sv0000{f.hexid(4).upper()}sd0000{f.hexid(4).upper()}"
                   f"bc06sc04i00\n" for _ in range(f.rng.randint(40, 90))) + f"dmi:bvn{m.vendor[0]}:pn{m.vendor[1]}\n"


def small_outputs(f: Fleet, m: Machine) -> dict[str, str]:
    """Outputs of the short commissioning scripts."""
    blk = {"blockdevices": [{"name": n, "maj:min": f"8:{i * 16}", "rm": False, "size": s, "ro": False,
                             "type": "disk", "model": mo, "serial": se, "rota": k == "rotary", "tran": "sata"}
                            for i, (n, mo, s, k, se) in enumerate(m.disks)]}
    addr = "".join(f"{i + 2}: {name}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP\n"
                   f"    link/ether {mac} brd ff:ff:ff:ff:ff:ff\n    inet {ip}/16 brd 10.255.255.255 scope global "
                   f"{name}\n       valid_lft forever preferred_lft forever\n"
                   for i, ((name, mac, _), ip) in enumerate(zip(m.nics, m.ips, strict=True)))
    lldp = "".join(f'<interface label="Interface" name="{name}" via="LLDP" rid="{i + 1}" age="0 day, 00:01:12">\n'
                   f' <chassis label="Chassis">\n  <id label="ChassisID" type="mac">{f.mac()}</id>\n'
                   f'  <name label="SysName">tor-switch-{f.rng.randint(1, 40)}</name>\n'
                   f'  <descr label="SysDescr">Arista Networks EOS version 4.28.3M running on an Arista DCS-7050SX3'
                   f'</descr>\n </chassis>\n <port label="Port">\n  <id label="PortID" type="ifname">Ethernet'
                   f'{f.rng.randint(1, 48)}</id>\n </port>\n</interface>\n' for i, (name, _, _) in enumerate(m.nics))
    return {"maas-lsblk": json.dumps(blk, indent=2), "maas-ip-addr": addr,
            "maas-capture-lldpd": f'<?xml version="1.0" encoding="UTF-8"?>\n<lldp label="LLDP neighbors">\n{lldp}'
                                  "</lldp>\n",
            "maas-serial-ports": "ttyS0 16550A 0x3f8 irq 4\nttyS1 16550A 0x2f8 irq 3\n",
            "maas-kernel-cmdline": "BOOT_IMAGE=/casper/vmlinuz nomodeset ro root=squash:http://10.1.0.2:5248/images/"
                                   f"ubuntu/amd64/ga-22.04/jammy/stable/squashfs ip=::::{m.hostname}:BOOTIF "
                                   "ip6=off cc:{'datasource_list': ['MAAS']}end_cc console=ttyS0,115200\n"}


def smartctl(f: Fleet, m: Machine, disk: tuple[str, str, int, str, str]) -> str:
    """smartctl -a for one disk."""
    rng, (name, model, size, _, serial) = f.rng, disk
    attrs = "".join(f"{i:3d} Attribute_{i:<20} 0x0032   {rng.randint(90, 100):03d}   {rng.randint(90, 100):03d}   "
                    f"000    Old_age   Always       -       {rng.randint(0, 99999)}\n" for i in range(1, 25))
    return (f"smartctl 7.2 2020-12-30 r5155 [x86_64-linux-5.15.0-91-generic] (local build)\n\n"
            f"=== START OF INFORMATION SECTION ===\nDevice Model:     {model}\nSerial Number:    {serial}\n"
            f"User Capacity:    {size:,} bytes\nSector Size:      512 bytes logical/physical\n"
            f"Device is:        In smartctl database\nSMART support is: Enabled\n\n=== START OF READ SMART DATA "
            f"SECTION ===\nSMART overall-health self-assessment test result: PASSED\n\nID# ATTRIBUTE_NAME          "
            f"FLAG     VALUE WORST THRESH TYPE      UPDATED  WHEN_FAILED RAW_VALUE\n{attrs}\n/dev/{name}: passed\n")


def curtin_log(f: Fleet, m: Machine) -> str:
    """The installation log of a deployment (curtin's stage and command lines)."""
    rng, lines, clock = f.rng, [], 0.0
    disk = m.disks[0][0]
    for stage in CURTIN_STAGES:
        lines.append(f"start: cmd-install/stage-{stage}/builtin/cmd-{stage}: curtin command {stage}\n")
        for _ in range(rng.randint(40, 160)):
            clock += rng.uniform(0.001, 0.9)
            lines.append(f"{clock:.3f} Running command {rng.choice(CURTIN_COMMANDS).format(disk=disk)} with allowed "
                         f"return codes [0] (capture={rng.choice(('True', 'False'))})\n")
            if rng.random() < 0.3:
                lines.append(f"{clock:.3f} {rng.choice(('Shelling out', 'Retrying', 'devsync happy - path',))} "
                             f"/dev/{disk}{rng.randint(1, 3)} now exists\n")
        lines.append(f"finish: cmd-install/stage-{stage}/builtin/cmd-{stage}: SUCCESS: curtin command {stage}\n")
    return "".join(lines)


def _result(f: Fleet, m: Machine, script_set: int, name: str, output: str, stderr: str = "") -> None:
    """One script's result: combined output, stdout, stderr and its YAML result, as bytes.

    The output is cut where the dump would outgrow its size (four hex digits a character: it is there twice).
    """
    output = output[:max(0, (f.left() - 400) // 4)]
    start = f.when(m, f.rng.uniform(5, 60))
    t = f.t
    result = f"status: passed\nresults:\n  duration_seconds: {f.rng.randint(1, 600)}\n  host: {m.hostname}\n"
    t.add("metadataserver_scriptresult", script_set, f.script_ids.get(name), name, 2, 0, start,
          f.when(m, f.rng.uniform(1, 300)), {}, (output + stderr).encode(), output.encode(), stderr.encode(),
          result.encode())


def _history(f: Fleet, m: Machine) -> None:
    """One round of the machine's life: commissioning, testing and (for most) an installation, with events.

    Stops writing script results as soon as the dump is full.
    """
    t, rng = f.t, f.rng
    _events(f, m, rng.randint(800, 2400))
    runs = [(0, "commissioning", [("maas-support-info", lambda: support_info(f, m)), ("maas-lshw", lambda: lshw(f, m)),
                                  ("maas-list-modaliases", lambda: modaliases(f, m)),
                                  ("maas-machine-resources", lambda: resources(f, m)),
                                  *((k, lambda v=v: v) for k, v in small_outputs(f, m).items())]),
            (2, "testing", [*(("smartctl-validate", lambda d=d: smartctl(f, m, d)) for d in m.disks),
                            ("memtester", lambda: "memtester version 4.5.1\nLoop 1/1:\n  Stuck Address       : ok\n"),
                            ("stress-ng-cpu-short", lambda: "stress-ng: info: dispatching hogs: "
                                                            f"{m.sockets * m.cpu[3] * 2} cpu\nstress-ng: info: "
                                                            "successful run completed in 300.02s\n")])]
    if rng.random() < 0.7:
        runs.append((1, "installation", [("curtin-install-log", lambda: curtin_log(f, m))]))
    for result_type, tag, scripts in runs:
        sset = t.add("metadataserver_scriptset", m.node_id, result_type, f.when(m, 5), "off", (tag,))
        for name, output in scripts:
            if f.left() <= 0:
                return
            _result(f, m, sset, name, output(), "" if rng.random() < 0.8 else "WARNING: no LLDP neighbours yet\n")


def statements(db_mb: int, images_in_db: bool, controllers: list[tuple[str, int]]) -> Iterator[str]:
    """psql input that fills the lab's schema with a deployment whose dump is about ``db_mb`` MiB raw.

    ``controllers``: (hostname, MAAS node type) of the lab's controllers.
    """
    budget = max(int(db_mb * MIB), SCHEMA_DUMP_BYTES)
    image_bytes = int(budget * IMAGE_SHARE) if images_in_db else 0
    f = Fleet(db_mb, budget)
    _users_and_network(f)
    _catalogue(f)
    nodes = _controllers(f, controllers)
    regions = [n for n, (_, kind) in zip(nodes, controllers, strict=True) if kind in (3, 4)]
    f.budget -= image_bytes
    machines: list[Machine] = []
    while f.left() > 0 or len(machines) < MIN_MACHINES:
        if len(machines) < MIN_MACHINES or f.rng.random() < 0.6:
            machines.append(_machine(f, len(machines) + 1))
        if f.left() > 0:
            _history(f, machines[-1] if f.rng.random() < 0.7 else f.rng.choice(machines))
        if f.t.buffered >= FLUSH_BYTES:
            yield from f.t.flush()
    f.budget += image_bytes
    yield from _images(f, images_in_db, image_bytes, regions)
    yield from f.t.flush()
    yield f.t.sequences()
