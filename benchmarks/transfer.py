"""Benchmark 3: one file of BENCH_TRANSFER_MB MiB fetched from a rack through the bastion.

maasops's raw exec channel as maasops connects (``ssh -W`` to the bastion, AES-GCM preferred)
vs the same with paramiko's default cipher order (AES-CTR + HMAC) and through Fabric's own
paramiko gateway session (what :mod:`maasops.connect` and :mod:`maasops.jump` replace), vs
paramiko SFTP ``get`` (with and without prefetch) and OpenSSH ``ssh host cat`` and ``scp``.
All without compression, each in its own process.
"""

from __future__ import annotations

import os
import sys

from benchmarks.common import RUNS, Ratio, fresh_dir, median_of, report, secs, site, ssh, timed

SIZE_MB = int(os.environ.get("BENCH_TRANSFER_MB", "1024"))
REMOTE = "/var/tmp/big.bin"
OURS = "maasops stream (ssh -W hop, AES-GCM)"
CTR = "maasops stream, AES-CTR + HMAC (paramiko's default order)"
HOP = "maasops stream through a paramiko gateway session"
SFTP = "paramiko SFTP get, prefetch"
SSH_CAT, SCP = "OpenSSH: ssh host cat", "OpenSSH: scp"


def run() -> list[dict]:
    """Run benchmark 3; return its report."""
    with site("transfer", regions=1, racks=1, profile="deb-3.5", db_mb=1) as the_lab:
        the_lab.run("rack1", f"head -c {SIZE_MB}M /dev/urandom > {REMOTE} && chmod 644 {REMOTE}")
        out = fresh_dir("transfer")

        def ours(method: str):
            return timed([sys.executable, "-m", "benchmarks.fetch_one", str(the_lab.path), "rack1", REMOTE,
                          str(out / method), method])
        rows, got = [], {}
        for name, fn, runs in [(OURS, lambda: ours("stream"), RUNS), (CTR, lambda: ours("stream-ctr"), RUNS),
                               (HOP, lambda: ours("stream-paramiko-hop"), RUNS), (SFTP, lambda: ours("sftp"), RUNS),
                               ("paramiko SFTP get, no prefetch", lambda: ours("sftp-noprefetch"), 1),  # slow: once
                               (SSH_CAT, lambda: timed(ssh(the_lab, "rack1", f"cat {REMOTE}") + f" > {out}/ssh"), RUNS),
                               (SCP, lambda: timed(f"scp -q -F {the_lab.ssh_config} rack1:{REMOTE} {out}/scp"), RUNS)]:
            got[name] = median_of(fn, runs)
            rows.append({"method": name, "runs": str(runs), "seconds": secs(got[name]),
                         "MiB/s": f"{SIZE_MB / got[name].seconds:.0f}",
                         "peak RSS MiB": f"{got[name].median.rss_mib:.0f}" if "OpenSSH" not in name else "-"})
        best = min(got[SSH_CAT].seconds, got[SCP].seconds)
        mine = got[OURS].seconds
        return [report("transfer", f"3. Transfer of {SIZE_MB} MiB from a rack via the bastion, median of {RUNS}",
                       rows, {"maasops throughput / best OpenSSH": Ratio(best / mine, "≥", 0.8),
                              "AES-GCM throughput / AES-CTR + HMAC (maasops's stream)":
                                  Ratio(got[CTR].seconds / mine, note="why connect.py prefers AES-GCM"),
                              "ssh -W hop throughput / paramiko gateway session":
                                  Ratio(got[HOP].seconds / mine, note="why jump.py hops with OpenSSH"),
                              "SFTP get (prefetch) throughput / maasops":
                                  Ratio(mine / got[SFTP].seconds, note="why maasops streams")},
                       "OpenSSH's own ssh and scp through the same ssh_config (ProxyJump to the bastion).",
                       {k: v.raw for k, v in got.items()})]
