"""The config part of a set: the controller's MAAS trees as one archive (``config.tar``).

What to back up (:func:`backup_steps`): the trees the host's roles archive, read-only, with the
units stopped, without the caches, image-storage when excluded or sent apart, and what a restore
leaves in a tree. How to check it offline (:func:`check`): every member read back as listed, and
none a restore must not write (:mod:`maasops.confine`). How to restore it (:func:`restore_steps`):
upload (members checked on the laptop and the archive re-written from them), then in the files
phase: record and move each tree aside, extract, compare the host's listing of what it wrote with
the archive, reuse excluded caches from the aside copy. What undoes it: each move aside's undo puts
the tree back (a mount point's contents by :func:`put_back_inside`, which the rollback runs too).

:mod:`maasops.confine` checks what may be written and :mod:`maasops.tarstream` parses; this module
only composes them into the part's steps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from maasops import backupset, confine, layouts, stream
from maasops import manifest as mf
from maasops.backupset import SetFiles
from maasops.command import Cmd, Q, Word
from maasops.compression import compressed
from maasops.hostfiles import no_links, receive_emitted, record, recorded
from maasops.hostpaths import LEFTOVERS, UPLOAD_ARCHIVE, aside_path, run_dir, state_file, upload_names
from maasops.manifest import ARCHIVE, HostManifest
from maasops.parts import Read
from maasops.plan import Phase, Step, StepId
from maasops.probe import HostFacts

if TYPE_CHECKING:
    from maasops.backup_plan import BackupOptions


@dataclass(frozen=True)
class ArchiveSpec:
    """What the archive step fetches."""

    file: str
    trees: tuple[str, ...]
    actual_trees: tuple[str, ...]
    excluded: tuple[str, ...]


def archive_command(paths: tuple[str, ...], excludes: tuple[str, ...]) -> Cmd:
    """A tar of ``paths`` (as on the host) on stdout, owners and modes kept, without ``excludes`` and without
    what a restore leaves in a tree; read-only on the host."""
    return Cmd("tar --create --file=- --directory=/ --anchored", *(Q("--exclude=" + p.lstrip("/")) for p in excludes),
               "--no-anchored", Q("--exclude=" + LEFTOVERS), "--anchored", *(Q(p.lstrip("/")) for p in paths))


def limit(facts: HostFacts, size: int, options: BackupOptions) -> int:
    """The most a tar of ``size`` bytes of trees may carry, within the laptop's floor and ceiling (the ceiling when
    the probe measured no sizes: :func:`maasops.stream.bound`)."""
    return stream.bound(int(size * 1.5) + stream.MARGIN if facts.sizes else None, options.max_stream_gib)


def backup_steps(facts: HostFacts, options: BackupOptions, ext: str,
                 apart: tuple[str, ...]) -> tuple[list[Step], ArchiveSpec, list[str]]:
    """What to back up: the config archive (its file's name ending with ``ext``), leaving out the caches, the images
    when excluded, and ``apart`` (sent on their own); and the plan's notes (trees not present)."""
    lay = facts.layout
    wanted = lay.archived_trees(set(facts.roles))
    trees = tuple(p for p in wanted if p in facts.present)
    missing = [p for p in wanted if p not in facts.present]
    excludes = lay.cache_excludes + (lay.image_dirs if options.exclude_images else ())
    tar = archive_command(tuple(map(facts.on_host, trees)), tuple(map(facts.on_host, excludes + apart)))
    size = sum(facts.sizes.get(p, 0) for p in trees) - sum(facts.sizes.get(p, 0) for p in excludes + apart)
    # Uncompressed, the tar is about the trees' size; compressed, only an earlier set can tell (see backup.py).
    step = Step(StepId.ARCHIVE, "archive config trees", compressed(tar, options.compress), fetch=ARCHIVE + ext,
                limit=limit(facts, size, options),
                estimate=size if facts.sizes and options.compress == "none" else None)
    spec = ArchiveSpec(ARCHIVE + ext, trees, tuple(facts.on_host(p) for p in trees),
                       tuple(facts.on_host(p) for p in excludes))
    notes = [f"not present, not archived: {', '.join(missing)}"] if missing else []
    return [step], spec, notes


def check_listed(m: HostManifest, read: Read, what: str, stored: mf.Archive | mf.Images,
                 roots: tuple[str, ...]) -> list[str]:
    """An archive (config or images) read back: members as listed, none a restore must not write."""
    problems = []
    got = read(what, stored, backupset.read_archive)
    if got is not None and tuple(mf.Member(**e) for e in got[0]) != stored.files:
        problems.append(f"{what} members differ from the manifest listing")
    rules = confine.rules(roots, m.lay.owner_rules(set(m.roles)), m.on_host)
    violations = confine.check_listing(stored.files, rules)
    if violations:
        problems.append("a restore must not write " + "; ".join(violations[:3]))
    return problems


def check(m: HostManifest, read: Read) -> list[str]:
    """How to check it offline: the config archive read back through ``read`` (:func:`check_listed`)."""
    return check_listed(m, read, "archive", m.archive, m.lay.archived_trees(set(m.roles)))


def confinement(m: HostManifest, target: HostFacts, images: bool = False) -> confine.Rules:
    """What the target's layout lets this host's archive (or its images part) write, as member names of it."""
    lay = target.layout
    trees = lay.image_dirs if images else lay.archived_trees(set(m.roles))
    return confine.rules(trees, lay.owner_rules(set(m.roles)),
                         lambda t: layouts.rebase(target.on_host(t), target.snap_data, m.snap_data))


def contents_list(path: str, run_id: str) -> str:
    """Where a restore lists what a mount-point tree held before it moved its contents aside."""
    return f"{run_dir(run_id)}/contents-{hashlib.sha256(path.encode()).hexdigest()[:16]}"


def put_back_inside(path: str, aside: str, listed: str, dispose: Cmd) -> Cmd:
    """Put a mount-point tree's contents back from ``aside``, exactly as ``listed`` says it held them.

    What is in the tree now but was not listed came with the restore and goes to ``dispose`` (a command
    taking the entry as $1); a listed entry that is in the aside copy comes back; one that never left
    (a restore killed half-way) stays. Nothing happens when there is no list: nothing was moved.
    """
    return Cmd(
        "if [ -f", Q(listed), "]; then",
        "find", Q(path), "-mindepth 1 -maxdepth 1 ! -name", Q(LEFTOVERS), "-printf '%f\\0' |",
        "while IFS= read -r -d '' e; do grep -qzxF -- \"$e\"", Q(listed), "|| {", "set --",
        Word(Q(path + "/"), '"$e"'), "&&", dispose, "; }; done &&",
        "while IFS= read -r -d '' e; do if [ -e", Word(Q(aside + "/"), '"$e"'), "] || [ -L",
        Word(Q(aside + "/"), '"$e"'), "]; then if [ -e", Word(Q(path + "/"), '"$e"'), "] || [ -L",
        Word(Q(path + "/"), '"$e"'), "]; then set --", Word(Q(path + "/"), '"$e"'), "&&", dispose, "; fi; mv --",
        Word(Q(aside + "/"), '"$e"'), Word(Q(path + "/"), '"$e"'), "; fi; done <", Q(listed),
        "&& rmdir", Q(aside), "; fi")


def _aside_step(path: str, run_id: str, state: str, inside: bool) -> Step:
    aside = aside_path(path, run_id, inside)
    if inside:  # a mount point cannot be renamed: its contents move into a directory inside it
        moved, listed = f"aside-in {path} {aside}", contents_list(path, run_id)
        # MAAS's files only: this and earlier restores' leftovers stay where they are. The list is
        # complete before anything moves (written aside, then renamed), so a killed move can be undone.
        command = Cmd(record(state, moved), "&& mkdir -m 0700", Q(aside), "&& find", Q(path),
                      "-mindepth 1 -maxdepth 1 ! -name", Q(LEFTOVERS), "-printf '%f\\0' >", Q(listed + ".tmp"),
                      "&& mv", Q(listed + ".tmp"), Q(listed), "&& while IFS= read -r -d '' e; do mv --",
                      Word(Q(path + "/"), '"$e"'), Word(Q(aside + "/"), '"$e"'), "; done <", Q(listed))
        undo = put_back_inside(path, aside, listed, Cmd('rm -rf -- "$1"'))
        return Step(StepId.MOVE_ASIDE, f"move the contents of {path} aside (a mount point)", command, Phase.FILES,
                    undo=undo, key=path)
    moved, new = f"aside {path} {aside}", f"new {path}"
    # Recorded first: a restore killed between the two leaves a record that says more, never less.
    command = Cmd("if [ -e", Q(path), "] || [ -L", Q(path), "]; then if [ -e", Q(aside), "]; then echo",
                  Q(aside + " already exists"), ">&2; exit 1; fi;", record(state, moved), "&& mv -T", Q(path),
                  Q(aside), "; else", record(state, new), "; fi")
    undo = Cmd("if", recorded(state, moved), "; then if [ -e", Q(aside), "] || [ -L", Q(aside), "]; then rm -rf",
               Q(path), "&& mv -T", Q(aside), Q(path), "; fi; elif", recorded(state, new), "; then rm -rf", Q(path),
               "; fi")
    return Step(StepId.MOVE_ASIDE, f"move {path} aside", command, Phase.FILES, undo=undo, key=path)


def transform(m: HostManifest, target: HostFacts) -> str | None:
    """The tar ``--transform`` that moves a snap's members from the source's revision to the target's, or None."""
    if m.snap_data and target.snap_data and m.snap_data != target.snap_data:
        return "s,^{},{},".format(m.snap_data.lstrip("/"), target.snap_data.lstrip("/"))
    return None


def restore_steps(m: HostManifest, files: SetFiles, target: HostFacts, run_id: str, *, identity: str | None,
                  images: list[Step]) -> list[Step]:
    """How to restore it, by phase: upload (the archive as the laptop re-wrote it from the members it checked),
    files (move each tree aside, extract, the host's listing of what it wrote compared with the archive, excluded
    caches reused). The images part's steps (``images``: :func:`maasops.parts.images.restore_steps`) go in each
    phase after the archive's: its extraction before the comparison, which lists the images' trees too. What undoes
    it is each step's ``undo``: the upload's removes every upload, a move aside's puts the tree back."""
    rdir, arch = run_dir(run_id), m.archive
    upload = f"{rdir}/{UPLOAD_ARCHIVE}"  # as the laptop re-wrote it, uncompressed (maasops.confine.emitted)
    send = files.send(f"{m.host}/{arch.file}", identity=identity if arch.encryption else None)
    return [Step(StepId.UPLOAD_ARCHIVE, "upload config archive", receive_emitted(upload), Phase.UPLOAD, send=send,
                 undo=Cmd("rm -f --", *map(Q, upload_names(rdir))), inspect_upload=True,
                 estimate=confine.emitted_size(arch.files)),
            *(s for s in images if s.phase == Phase.UPLOAD),
            *_tree_steps(m, target, upload, run_id, [s for s in images if s.phase == Phase.FILES])]


def _tree_steps(m: HostManifest, target: HostFacts, upload: str, run_id: str, images: list[Step]) -> list[Step]:
    state = state_file(run_id)
    steps, asides = [], {}
    for tree in m.archive.trees:
        path = target.on_host(tree)
        inside = tree in target.mountpoints
        asides[path] = aside_path(path, run_id, inside)
        steps.append(_aside_step(path, run_id, state, inside))
    members = tuple(t.lstrip("/") for t in m.archive.actual_trees)
    owners = target.layout.owner_names(set(m.roles))
    steps.append(Step(StepId.EXTRACT, "extract config archive", confine.extract_command(
        upload, members, owners, transform(m, target)), Phase.FILES))
    steps += images
    steps.append(_check_extracted(m, target))
    for excluded in m.archive.excluded:
        path = layouts.rebase(excluded, m.snap_data, target.snap_data)
        tree = next((t for t in asides if path.startswith(t + "/")), None)
        if tree is not None:
            kept = asides[tree] + path[len(tree):]
            steps.append(Step(StepId.REUSE_EXCLUDED, f"reuse {path} from the aside copy (hard links)", Cmd(
                no_links(tree, path), "if [ -d", Q(kept), "] && [ ! -e", Q(path), "]; then cp -al", Q(kept), Q(path),
                "; fi"), Phase.FILES, key=path))
    return steps


def _check_extracted(m: HostManifest, target: HostFacts) -> Step:
    """The host lists what the extraction wrote in the trees, and the laptop compares it with the members it
    checked and sent (they are the manifest's listing, member for member): any difference fails the restore
    before its commit, so everything is put back."""
    trees = [target.on_host(t) for t in m.archive.trees]
    if m.images:
        trees += [layouts.rebase(t, m.snap_data, target.snap_data) for t in m.images.actual_trees]
    outer = tuple(t for t in dict.fromkeys(trees) if not any(t.startswith(o + "/") for o in trees))
    return Step(StepId.CHECK_EXTRACTED, "compare what the host wrote with the archive", confine.listing_command(
        outer, LEFTOVERS), Phase.FILES, judge=confine.extracted_judge(
            m.members(), lambda p: layouts.rebase(p, m.snap_data, target.snap_data)))


def tree_of(path: str, m: HostManifest, target: HostFacts) -> str:
    """The restored tree on the target that holds ``path`` (its own directory when none does)."""
    return next((t for t in (target.on_host(t) for t in m.archive.trees) if path.startswith(t + "/")),
                path.rsplit("/", 1)[0])


def before_restore(path: str, m: HostManifest, target: HostFacts, run_id: str) -> str | None:
    """Where the host's own copy of ``path`` is once its tree was moved aside, or None (not in a tree)."""
    for tree in m.archive.trees:
        root = target.on_host(tree)
        if path.startswith(root + "/"):
            return aside_path(root, run_id, tree in target.mountpoints) + path[len(root):]
    return None

