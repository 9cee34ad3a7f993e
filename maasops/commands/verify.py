"""``maasops verify``: check a backup set offline (a local one, or one in a restic repository)."""

from __future__ import annotations

from pathlib import Path

from invoke import Context, Exit

from maasops import crypto, output, reposource, signing, verify
from maasops.commands.fleet_request import FleetRequest, check_set_named, inventory_of, path, repository
from maasops.options import FROM_REPO, TRUST, TaskSpec
from maasops.results import FAILED, REFUSED

SPEC = TaskSpec("verify", "6. Check a backup set offline: signature, checksums, sizes, dump, what it may write.",
                TRUST + FROM_REPO + ("parallel", "json"), positional=("backup_set",), positional_unless="repo",
                check=check_set_named)


def run(c: Context, req: FleetRequest) -> None:
    """Check a backup set offline and print a table; exit 1 when anything is wrong."""
    opts, out = req.options, req.out
    try:
        ids = crypto.identities(Path(opts.decrypt_key)) if opts.decrypt_key else None
    except (OSError, crypto.CryptoError) as exc:
        raise Exit(f"--decrypt-key: {exc}", code=REFUSED) from None
    dep = inventory_of(opts)
    signers = path(opts.allowed_signers) or (dep.allowed_signers if dep else None)
    policy = verify.Policy(signers or signing.default_allowed_signers(), opts.trust_unsigned,
                           opts.database_elsewhere)
    if opts.repo:
        backup_set, sc = reposource.verify_from_repo(repository(opts), opts.set or opts.backup_set,
                                                     opts.deployment, policy, opts.parallel, ids, out.say)
    else:
        backup_set, sc = opts.backup_set, verify.verify_set(Path(opts.backup_set), policy, opts.parallel, ids)
    out.say(output.table(verify.rows(sc)))
    for problem in sc.problems:
        out.say(f"set: {problem}")
    for note in sc.notes:
        out.say(f"note: {note}")
    out.say(f"\n{backup_set}: " + (f"OK, signed by {sc.signer or 'NOBODY'}" if sc.ok else
                                    "DAMAGED OR INCOMPLETE, or not trusted: do not restore from it"))
    out.emit(output.verify_json(sc))
    if not sc.ok:
        raise Exit(code=FAILED)
