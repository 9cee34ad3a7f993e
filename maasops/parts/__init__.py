"""The parts of a backup set, one module each, each answering the same four questions by the same names.

=============  ==========================  ===============================  ==========================================
part           what to back up             how to check it offline          how to restore it
               (``backup_steps``)          (``check``)                      (``restore_steps``)
=============  ==========================  ===============================  ==========================================
``database``   DB check, the dump          the dump read as its kind is     upload (+ unpack a directory dump),
               (the one host that dumps:   read, complete                   set the current database aside, load
               ``dump_owners``)
``config``     the config trees' archive   the archive's members as         upload, move each tree aside, extract,
                                           listed, none a restore must      compare the host's listing of what it
                                           not write (``confine``)          wrote, reuse excluded caches
``images``     image-storage, sent only    as ``config``, for the images    upload, extract (inside the config
               when its fingerprint        part's own trees                 part's files phase: image-storage lies
               changed                                                      inside a config tree)
=============  ==========================  ===============================  ==========================================

What undoes it: every step a part returns carries its own undo (``plan.Step.undo``), run by
the runner when a later step fails; the commands a ``--rollback`` shares with those undos are
the part's too (``database.put_back``, ``config.put_back_inside``).

- ``backup_steps(facts, ..., options, ext, ...) -> (steps, spec, notes)``: the steps of a host's backup plan
  for this part, the spec of what they fetch (``backup.py`` records it in the host manifest), and what the plan
  says of them.
- ``check(m, read) -> problems``: what ``verify`` runs on the set's files for this part of host
  manifest ``m``; every file is read through ``read(what, stored, reader)`` (verify's: sha256, size,
  decryption), which returns the reader's result or None (its problem already noted).
- ``restore_steps(m, files, target, run_id, ...) -> steps`` (the database part's also notes): the
  restore plan's steps for this part, each with its ``Phase``; ``restore_plan`` puts every part's
  steps in phase order.

``backup_plan``, ``restore_plan``, ``verify`` and ``preflight`` compose the parts; every MAAS
fact they use is still :mod:`maasops.layouts`', every quoting rule :mod:`maasops.command`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from maasops.manifest import Stored

# verify's reading of one of a set's files for a part: (what, its stored record, how its plaintext is read) -> the
# reader's result, or None when it could not be checked (missing, unreadable, sealed, sizes only).
Read = Callable[[str, Stored, Callable[[BinaryIO, str], Any]], Any]
