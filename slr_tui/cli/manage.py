"""Keeping the run store tidy: ``slr tag``, ``slr note`` (RUN/notes.json, never run.json:
the engine rewrites that while a run trains), ``slr rm`` (to ``RUNS/.trash/``),
``slr archive`` (to ``RUNS/archive/``) and ``slr restore``. Nothing is ever deleted: a run
folder is renamed, and `slr restore` renames it back."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from engine import runs
from slr_tui.cli.options import RunArg, RunsDirOpt, run_ref, runs_root
from slr_tui.cli.render import console, fail


def _tags_line(info: runs.RunInfo, tags: list[str]) -> str:
    return f"{info.id}: " + (" ".join(tags) if tags else "(no tags)")


def tag(
    ref: RunArg,
    changes: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[+TAG|-TAG]...",
            help="+TAG (or TAG) adds a tag, -TAG removes one; none: print the tags.",
            show_default=False,
        ),
    ] = None,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Add or remove a run's tags, then print them: `slr tag RUN +baseline -old`.

    Tags live in RUN/notes.json (the engine never writes it, so tagging a run that is
    training is safe). Filter by them with `slr runs --filter tag:baseline` or `/` on the
    runs screen of `slr-tui`. A tag is 1-40 letters, digits, '.', '-' or '_'."""
    info = run_ref(ref, runs_dir)
    add, remove = [], []
    for c in changes or []:
        if c.startswith("-"):
            remove.append(c[1:])
        else:
            add.append(c[1:] if c.startswith("+") else c)
    if not add and not remove:
        console.print(_tags_line(info, info.tags), highlight=False)
        return
    for t in remove:
        if not t:
            raise fail("a lone '-': write -TAG to remove a tag")
    try:
        out = runs.update_notes(info.path, add=add, remove=remove)
    except runs.RunError as exc:
        raise fail(escape(str(exc))) from None
    except OSError as exc:
        raise fail(runs.os_error_line(exc, info.path / runs.NOTES_JSON)) from None
    console.print(escape(_tags_line(info, out["tags"])), highlight=False)


def note(
    ref: RunArg,
    text: Annotated[
        str | None,
        typer.Argument(metavar="[TEXT]", help="The note (replaces the one there); none: print it."),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the run's note.")] = False,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Set, print or clear a run's note: `slr note RUN "lr too high, rerun"`.

    The note lives in RUN/notes.json beside the tags; `slr show` and the runs screen of
    `slr-tui` (key e) show it, and `/ note:*rerun*` filters by it."""
    info = run_ref(ref, runs_dir)
    if clear and text is not None:
        raise fail("give a note or --clear, not both")
    if text is None and not clear:
        current = runs.read_notes(info.path)["note"]
        console.print(escape(current) if current else f"{info.id}: (no note)", highlight=False)
        return
    try:
        out = runs.update_notes(info.path, note="" if clear else text)
    except runs.RunError as exc:
        raise fail(escape(str(exc))) from None
    except OSError as exc:
        raise fail(runs.os_error_line(exc, info.path / runs.NOTES_JSON)) from None
    console.print(
        f"{info.id}: note cleared" if clear else f"{info.id}: {escape(out['note'])}",
        highlight=False,
    )


def _move(info: runs.RunInfo, root, to: str) -> str:
    try:
        dest = runs.move_run(info, root, to)
    except runs.RunError as exc:
        raise fail(escape(str(exc))) from None
    except OSError as exc:
        raise fail(runs.os_error_line(exc, info.path)) from None
    return str(dest)


def rm(
    ref: RunArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Move a run to the trash (RUNS/.trash/RUN); `slr restore RUN` brings it back.

    Nothing is deleted: empty RUNS/.trash/ by hand to free the space. A running run is
    refused (stop it first with `slr stop RUN`). Asks first unless --yes."""
    root = runs_root(runs_dir)
    info = run_ref(ref, runs_dir)
    if info.status in runs.ACTIVE:
        raise fail(f"run {info.id} is {info.status}: stop it first (slr stop {info.id})")
    if not yes:
        if not sys.stdin.isatty():
            raise fail(f"not moving {info.id} to the trash without --yes (no terminal to ask)")
        if not typer.confirm(f"move run {info.id} to {root / runs.TRASH_DIR}?", default=False):
            raise typer.Exit(1)
    dest = _move(info, root, runs.TRASH_DIR)
    console.print(
        f"moved {info.id} to {dest} (undo: slr restore {info.path.name})", highlight=False
    )


def archive(ref: RunArg, runs_dir: RunsDirOpt = None) -> None:
    """Move a run to RUNS/archive/: out of `slr runs` and the runs screen, kept whole.

    `slr runs --archived` lists archived runs too (the runs screen: key A, or the filter
    word `archived`); `slr restore RUN` brings one back. A running run is refused."""
    root = runs_root(runs_dir)
    info = run_ref(ref, runs_dir)
    dest = _move(info, root, runs.ARCHIVE_DIR)
    console.print(f"archived {info.id} to {dest}", highlight=False)


def restore(
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN]", help="Run id or unique prefix in the trash or the archive."
        ),
    ] = None,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Move a run back from the trash or the archive into the runs folder.

    Without RUN, list the runs that can be restored (trash and archive)."""
    root = runs_root(runs_dir)
    if ref is None:
        found = [
            (s, r) for s in (runs.TRASH_DIR, runs.ARCHIVE_DIR) for r in runs.stored_runs(root, s)
        ]
        if not found:
            console.print(
                f"nothing to restore in {root / runs.TRASH_DIR} or {root / runs.ARCHIVE_DIR}"
            )
            return
        for sub, r in found:
            console.print(f"{sub}/{r.path.name}  {r.status}", highlight=False)
        return
    try:
        info = runs.find_stored(ref, root)
        dest = runs.restore_run(info, root)
    except runs.RunError as exc:
        raise fail(escape(str(exc))) from None
    except OSError as exc:
        raise fail(runs.os_error_line(exc, root)) from None
    console.print(f"restored {info.id} to {dest}", highlight=False)
