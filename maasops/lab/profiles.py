"""Lab host profiles: which MAAS a simulated host pretends to have installed.

Only what a real host would show about its installed MAAS lives here (package
versions, snap revision and channel); where MAAS keeps its files comes from
:mod:`maasops.layouts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from maasops.layouts import Layout, layout_for, parse_version


@dataclass(frozen=True)
class Profile:
    """One installable MAAS as a lab host shows it."""

    name: str
    install: str  # deb | snap
    version: str  # as dpkg-query or snap list prints it
    snap_revision: str = ""
    snap_channel: str = ""
    # server | shared (its PostgreSQL also serves another application's database and role) | test-db (the
    # maas-test-db snap's socket) | vault (Vault keeps the credentials)
    database: str = "server"
    lxd_certificate: bool = False  # a snap that ran 2.8-3.0 generated the LXD client certificate (kept on upgrade)

    @property
    def layout_version(self) -> tuple[int, int]:
        """The profile's MAAS major and minor."""
        return parse_version(self.version)

    @property
    def layout(self) -> Layout:
        """The layout this profile's MAAS uses."""
        return layout_for(self.install, parse_version(self.version))


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("deb-2.9", "deb", "1:2.9.2-9164-g.ac176b5c4-0ubuntu1~20.04.1"),
        Profile("deb-3.5", "deb", "1:3.5.3-16381-g.5b2e8a6f6-0ubuntu1~22.04.1"),
        Profile("snap-2.9", "snap", "2.9.2-9164-g.ac176b5c4", "11322", "2.9/stable", lxd_certificate=True),
        # Installed at 2.9 and refreshed since: its LXD client certificate is still there, still used.
        Profile("snap-3.4", "snap", "3.4.2-14353-g.5a5221d57", "32469", "3.4/stable", lxd_certificate=True),
        Profile("snap-3.5", "snap", "3.5.3-16381-g.5b2e8a6f6", "37209", "3.5/stable"),
        # A region whose database is maas-test-db's (database_host is the socket directory it shares).
        Profile("snap-3.5-testdb", "snap", "3.5.3-16381-g.5b2e8a6f6", "37209", "3.5/stable", "test-db"),
        # A region whose PostgreSQL also serves another application (MAAS's docs: a "shared" server).
        Profile("deb-3.5-shared", "deb", "1:3.5.3-16381-g.5b2e8a6f6-0ubuntu1~22.04.1", database="shared"),
        # A region after `maas config-vault migrate`: regiond.conf names Vault and no database credentials.
        Profile("deb-3.5-vault", "deb", "1:3.5.3-16381-g.5b2e8a6f6-0ubuntu1~22.04.1", database="vault"),
    )
}
DEFAULT_PROFILE = "deb-3.5"


def parse_profiles(spec: str, hosts: list[str]) -> dict[str, Profile]:
    """Profiles per host from ``P`` or ``P,host=P2,...`` (the first bare name is the default).

    Raises ValueError naming the unknown profile or host.
    """
    default = DEFAULT_PROFILE
    overrides: dict[str, str] = {}
    for part in filter(None, (s.strip() for s in spec.split(","))):
        host, sep, name = part.rpartition("=")
        if sep:
            if host not in hosts:
                raise ValueError(f"--profile names unknown host {host!r} (hosts: {', '.join(hosts)})")
            overrides[host] = name
        else:
            default = name
    out = {}
    for host in hosts:
        name = overrides.get(host, default)
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
        out[host] = PROFILES[name]
    return out
