"""Benchmark 3: one 1 GiB file fetched from a rack through the bastion.

maasops's raw exec channel (what every backup uses) vs paramiko SFTP ``get`` (with and
without prefetch) vs OpenSSH ``ssh host cat`` and ``scp``. All without compression.
"""

from __future__ import annotations

import os
import sys

from benchmarks.common import RUNS, fresh_dir, median_of, report, secs, site, ssh, timed

SIZE_MB = int(os.environ.get("BENCH_TRANSFER_MB", "1024"))
REMOTE = "/var/tmp/big.bin"


def run() -> list[dict]:
    """Run benchmark 3; return its report."""
    with site("transfer", regions=1, racks=1, profile="deb-3.5", db_mb=1) as the_lab:
        the_lab.run("rack1", f"head -c {SIZE_MB}M /dev/urandom > {REMOTE} && chmod 644 {REMOTE}")
        out = fresh_dir("transfer")

        def ours(method: str):
            return timed([sys.executable, "-m", "benchmarks.fetch_one", str(the_lab.path), "rack1", REMOTE,
                          str(out / method), method])
        rows, got = [], {}
        for name, fn in [("maasops stream (raw exec channel)", lambda: ours("stream")),
                         ("paramiko SFTP get, prefetch", lambda: ours("sftp")),
                         ("paramiko SFTP get, no prefetch", lambda: ours("sftp-noprefetch")),
                         ("OpenSSH: ssh host cat", lambda: timed(ssh(the_lab, "rack1", f"cat {REMOTE}")
                                                                  + f" > {out}/ssh")),
                         ("OpenSSH: scp", lambda: timed(f"scp -q -F {the_lab.ssh_config} rack1:{REMOTE} {out}/scp"))]:
            r = median_of(fn, 1 if "no prefetch" in name else RUNS)  # ~3 MiB/s: once is enough
            got[name] = r
            rows.append({"method": name, "seconds": secs(r), "MiB/s": f"{SIZE_MB / r.seconds:.0f}",
                         "peak RSS MiB": f"{r.rss_mib:.0f}" if "OpenSSH" not in name else "-"})
        best_openssh = min(got["OpenSSH: ssh host cat"].seconds, got["OpenSSH: scp"].seconds)
        ours_s = got["maasops stream (raw exec channel)"].seconds
        return [report("transfer", f"3. Transfer of {SIZE_MB} MiB from a rack via the bastion, median of {RUNS}", rows,
                       {"maasops throughput / best OpenSSH": (best_openssh / ours_s, "≥ 0.8×"),
                        "SFTP get (prefetch) throughput / maasops":
                            (ours_s / got["paramiko SFTP get, prefetch"].seconds, "why maasops streams")})]


if __name__ == "__main__":
    run()
