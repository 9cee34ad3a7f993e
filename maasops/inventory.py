"""Load and validate a YAML inventory into a Deployment; errors name file:line.

Format (see inventory/*.yaml)::

    deployment: prod              # required: names the backup sets
    defaults:                     # optional, for every host
      user: ubuntu
      port: 22
      ssh_config: ssh_config      # relative to this file
      signing_key: ~/.ssh/id_ed25519   # signs every set (see docs/dr-drill.md, "Trusting a backup set")
      allowed_signers: allowed_signers # whose signatures verify and restore trust
      gateway: bastion.example    # a jump host, like ssh -J (maasops --jump-host for -H runs)
      sudo_password_file: path    # relative to this file; never the password itself
    hosts:
      region1:                    # an ssh_config alias or an address
        roles: [region]           # region, rack, or both
        address: 10.0.0.5         # optional (default: the name)
        install: deb              # optional: checked against the probe
        version: "3.5"            # optional: checked against the probe
        database: local           # optional: local | remote | maas-test-db

Nothing is contacted while loading: a bad file fails before any SSH.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from maasops.manifest import ManifestError, safe_name

ROLES = ("region", "rack")
HOST_CONNECT_KEYS = ("user", "port", "gateway", "sudo_password_file")
DEFAULT_KEYS = HOST_CONNECT_KEYS + ("ssh_config", "signing_key", "allowed_signers")
HOST_KEYS = HOST_CONNECT_KEYS + ("roles", "address", "install", "version", "database")
TOP_KEYS = ("deployment", "defaults", "hosts")


class InventoryError(ValueError):
    """The inventory file is wrong; the message starts with file:line."""


@dataclass(frozen=True)
class InventoryHost:
    """One controller as the inventory declares it."""

    name: str
    roles: tuple[str, ...]
    address: str
    user: str | None = None
    port: int | None = None
    gateway: str | None = None
    sudo_password_file: Path | None = None
    install: str | None = None
    version: str | None = None
    database: str | None = None


@dataclass(frozen=True)
class Deployment:
    """A named set of controllers."""

    name: str
    hosts: tuple[InventoryHost, ...]
    ssh_config: Path | None = None
    source: Path | None = None
    signing_key: Path | None = None  # the SSH key that signs this deployment's sets
    allowed_signers: Path | None = None  # whose signatures a verify or restore of its sets trusts

    def host(self, name: str) -> InventoryHost:
        """A host by name (KeyError when absent)."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)


def _err(path: Path, node: yaml.Node | None, msg: str) -> InventoryError:
    line = node.start_mark.line + 1 if node is not None else 1
    return InventoryError(f"{path}:{line}: {msg}")


def _mapping(path: Path, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise _err(path, node, f"{what} must be a mapping")
    out: dict[str, yaml.Node] = {}
    for key, value in node.value:
        name = key.value
        if name in out:
            raise _err(path, key, f"duplicate key {name!r} in {what}")
        if allowed and name not in allowed:
            raise _err(path, key, f"unknown key {name!r} in {what} (known: {', '.join(allowed)})")
        out[name] = value
    return out


def _scalar(path: Path, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.value == "":
        raise _err(path, node, f"{what} must be a non-empty value")
    return node.value


def _connect_fields(path: Path, nodes: dict[str, yaml.Node], what: str) -> dict:
    out: dict = {}
    for key in HOST_CONNECT_KEYS:
        if key in nodes:
            value = _scalar(path, nodes[key], f"{what}.{key}")
            if key == "port":
                if not value.isdigit() or not 0 < int(value) < 65536:
                    raise _err(path, nodes[key], f"{what}.port must be a TCP port number")
                out[key] = int(value)
            elif key == "sudo_password_file":
                out[key] = (path.parent / value).resolve()
            else:
                out[key] = value
    return out


def _compose(path: Path) -> yaml.Node:
    try:
        root = yaml.compose(path.read_text())
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path}: cannot read inventory: not UTF-8 text (byte {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise InventoryError(f"{path}:{line}: YAML error: {exc.problem or exc}") from None
    if root is None:
        raise InventoryError(f"{path}:1: empty inventory")
    return root


def _safe(path: Path, node: yaml.Node, value: str, what: str) -> str:
    """A name that becomes a directory of the backup set: no '/', '..' or other surprises."""
    try:
        return safe_name(value, what)
    except ManifestError as exc:
        raise _err(path, node, str(exc)) from None


def _roles(path: Path, node: yaml.Node, what: str) -> tuple[str, ...]:
    roles = ([_scalar(path, node, f"{what}.roles")] if isinstance(node, yaml.ScalarNode)
             else [_scalar(path, n, f"{what}.roles") for n in getattr(node, "value", [])])
    for role in roles:
        if role not in ROLES:
            raise _err(path, node, f"{what}: unknown role {role!r} (known: region, rack)")
    if not roles:
        raise _err(path, node, f"{what}: roles is empty")
    return tuple(sorted(set(roles), reverse=True))


def _host(path: Path, host_name: str, node: yaml.Node, defaults: dict) -> InventoryHost:
    what = f"hosts.{host_name}"
    nodes = _mapping(path, node, what, HOST_KEYS) if not _is_null(node) else {}
    if "roles" not in nodes:
        raise _err(path, node, f"{what}: missing 'roles' (region, rack or both)")
    roles = _roles(path, nodes["roles"], what)
    fields = {**defaults, **_connect_fields(path, nodes, what)}
    extra = {k: _scalar(path, nodes[k], f"{what}.{k}") for k in ("install", "version", "database") if k in nodes}
    if extra.get("install") not in (None, "deb", "snap"):
        raise _err(path, nodes["install"], f"{what}.install must be deb or snap")
    address = _scalar(path, nodes["address"], f"{what}.address") if "address" in nodes else host_name
    return InventoryHost(_safe(path, node, host_name, what), roles, address, **fields, **extra)


def _hosts(path: Path, top: dict[str, yaml.Node], root: yaml.Node, defaults: dict) -> tuple[InventoryHost, ...]:
    if "hosts" not in top:
        raise _err(path, root, "missing 'hosts'")
    hosts_nodes = _mapping(path, top["hosts"], "hosts", ())
    if not hosts_nodes:
        raise _err(path, top["hosts"], "no hosts")
    hosts, addresses = [], {}
    for host_name, node in hosts_nodes.items():
        h = _host(path, host_name, node, defaults)
        if h.address in addresses:
            raise _err(path, node, f"hosts.{host_name}: same address as hosts.{addresses[h.address]} ({h.address})")
        addresses[h.address] = host_name
        hosts.append(h)
    if not any("region" in h.roles for h in hosts):
        raise _err(path, top["hosts"], "no region controller: a deployment needs at least one host with "
                                       "role region")
    return tuple(hosts)


def _local_path(path: Path, nodes: dict[str, yaml.Node], key: str) -> Path | None:
    if key not in nodes:
        return None
    return (path.parent / _scalar(path, nodes[key], f"defaults.{key}")).expanduser().resolve()


def load(path: str | Path) -> Deployment:
    """Parse and validate an inventory file; raise InventoryError with file:line on any fault."""
    path = Path(path)
    root = _compose(path)
    top = _mapping(path, root, "inventory", TOP_KEYS)
    if "deployment" not in top:
        raise _err(path, root, "missing 'deployment' (the name of this deployment)")
    name = _safe(path, top["deployment"], _scalar(path, top["deployment"], "deployment"), "deployment")
    defaults_nodes = _mapping(path, top["defaults"], "defaults", DEFAULT_KEYS) if "defaults" in top else {}
    defaults = _connect_fields(path, defaults_nodes, "defaults")
    return Deployment(name, _hosts(path, top, root, defaults), _local_path(path, defaults_nodes, "ssh_config"),
                      path.resolve(), _local_path(path, defaults_nodes, "signing_key"),
                      _local_path(path, defaults_nodes, "allowed_signers"))


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")
