"""Issue 13, runs management on the runs screen, through Textual's Pilot: tags and a note
(e), the filter expressions (/), the wide columns, delete / archive / restore (d, a, A),
resume (r), the command line (y), and the `?` key list of every screen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from engine import runs
from slr_tui import launch
from slr_tui.screens.confirm import ConfirmScreen
from slr_tui.screens.help import HelpScreen
from slr_tui.screens.live import LiveRunScreen
from slr_tui.screens.runs import RunsScreen
from slr_tui.screens.tags import TagsScreen, parse_tags
from tests.fixtures_runs import build_runs, fixed_runs, make_app, settle, to_row, until

pytestmark = pytest.mark.anyio

A, B = "20250101-090000-demo", "20250102-090000-demo"
FAILED, RUNNING, LOST = (
    "20250103-090000-wlasl100-conservative",
    "20250104-090000-demo",
    "20250105-090000-demo",
)
ALL = {A, B, FAILED, RUNNING, LOST}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def runs_template(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("template") / "runs")["a"].parent


@pytest.fixture
def fx(tmp_path, monkeypatch, runs_template):
    with fixed_runs(tmp_path, monkeypatch, runs_template) as paths:
        yield paths


async def loaded(pilot) -> RunsScreen:
    screen = pilot.app.screen
    await until(pilot, lambda: screen.scans >= 1 and screen.table.shown_keys, what="runs")
    return screen


async def rescanned(pilot, screen: RunsScreen) -> None:
    n = screen.scans
    screen.poll()
    await until(pilot, lambda: screen.scans > n, what="a new scan")
    await pilot.pause()


def column_keys(table) -> list[str]:
    return [str(k.value) for k in table.columns]


def cell(table, key: str, col: str) -> str:
    return str(table.get_cell(key, col))


# --------------------------------------------------------------------------- tags and note


def test_parse_tags():
    assert parse_tags(" #baseline, +ablation  baseline ") == ["baseline", "ablation"]
    assert parse_tags("") == []
    with pytest.raises(runs.RunError):
        parse_tags("ok b@d")


async def test_e_edits_tags_and_note_and_the_table_shows_them(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        assert "tags_s" not in column_keys(screen.table)  # no run has tags: no column
        await to_row(pilot, A)
        await pilot.press("e")
        modal = app.screen
        assert isinstance(modal, TagsScreen)
        modal.query_one("#tags-tags", Input).value = "baseline b@d"
        await pilot.press("enter")
        assert app.screen is modal  # a bad tag: one line in the box, nothing written
        assert "bad tag 'b@d'" in str(modal.query_one("#tags-error", Static).render())
        assert not (fx["a"] / runs.NOTES_JSON).exists()
        modal.query_one("#tags-tags", Input).value = "baseline ablation"
        modal.query_one("#tags-note", Input).value = "the reference"
        await pilot.press("enter")
        assert isinstance(app.screen, RunsScreen)
        notes = runs.read_notes(fx["a"])
        assert notes["tags"] == ["baseline", "ablation"] and notes["note"] == "the reference"
        table = screen.table
        await until(pilot, lambda: "tags_s" in column_keys(table), what="tags column")
        assert cell(table, A, "tags_s") == "baseline ablation ✎"
        # escape cancels: nothing changes
        await pilot.press("e")
        assert isinstance(app.screen, TagsScreen)
        assert app.screen.query_one("#tags-tags", Input).value == "baseline ablation"
        app.screen.query_one("#tags-tags", Input).value = "other"
        await pilot.press("escape")
        assert runs.read_notes(fx["a"])["tags"] == ["baseline", "ablation"]
        # a tag from the CLI shows on the next scan
        runs.update_notes(fx["b"], add=["from-cli"])
        await rescanned(pilot, screen)
        assert cell(table, B, "tags_s") == "from-cli"


# --------------------------------------------------------------------------- filter


async def test_filter_expressions(fx):
    runs.update_notes(fx["a"], add=["baseline"])
    runs.update_notes(fx["failed"], add=["baseline", "wlasl"])
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        flt = screen.query_one("#filter", Input)
        line = screen.query_one("#filter-error", Static)

        async def typed(text: str) -> list[str]:
            flt.value = text
            await pilot.pause()
            return sorted(table.shown_keys)

        assert await typed("tag:baseline") == sorted([A, FAILED])
        assert await typed("tag:baseline status:finished") == [A]
        assert await typed("preset:wlasl*") == [FAILED]
        assert await typed("val_acc>0.9") == [A]  # A 0.96, B 0.88
        assert await typed("val_acc>0.5 preset:demo") == sorted([A, B, RUNNING, LOST])
        assert await typed("val_acc>0.5 preset:demo status:run*") == [RUNNING]
        assert await typed("epoch<5") == sorted([FAILED, LOST])
        assert await typed("!tag:baseline demo") == sorted([B, RUNNING, LOST])
        assert await typed("fin") == sorted([A, B])  # plain text as before
        assert not line.display
        # a term that cannot be read: one line, the last good filter stays
        assert await typed("fin epoch<") == sorted([A, B])
        assert line.display and "needs a number after <" in str(line.render())
        assert await typed("val_ac>0.5") == []
        assert line.display and "no listed run has the figure val_ac" in str(line.render())
        assert await typed("") == sorted(ALL)
        assert not line.display


# --------------------------------------------------------------------------- wide columns


@pytest.mark.parametrize(("size", "extra"), [((200, 60), True), ((120, 40), False)])
async def test_extra_columns_when_wide(fx, size, extra):
    runs.update_run_json(fx["a"], {"results": {"test": {"accuracy": 0.9123}}})
    app = make_app()
    async with app.run_test(size=size) as pilot:
        screen = await loaded(pilot)
        await pilot.pause()
        keys = column_keys(screen.table)
        assert all(k in keys for k in ("test_acc", "lr", "batch")) == extra
        if extra:
            assert cell(screen.table, A, "test_acc").strip() == "0.9123"
            assert cell(screen.table, B, "lr").strip() == "1e-3"  # optim.lr=0.001
            assert cell(screen.table, A, "batch").strip() == "16"


# --------------------------------------------------------------------------- delete, archive


async def test_delete_archive_restore_and_refusal_for_an_active_run(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        table = screen.table
        root = Path("runs")
        # an active run: refused with one line, no question
        await to_row(pilot, RUNNING)
        await pilot.press("d")
        await pilot.press("a")
        assert isinstance(app.screen, RunsScreen) and fx["running"].is_dir()
        # d asks first; n keeps the run
        await to_row(pilot, A)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert fx["a"].is_dir()
        await pilot.press("d")
        await pilot.press("y")
        await until(pilot, lambda: A not in table.shown_keys, what="A gone from the list")
        assert (root / runs.TRASH_DIR / A / runs.RUN_JSON).is_file() and not fx["a"].exists()
        # a archives (after a yes): out of the list
        await to_row(pilot, B)
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: B not in table.shown_keys, what="B archived")
        assert (root / runs.ARCHIVE_DIR / B).is_dir()
        # A shows archived runs, marked; a on one brings it back
        await pilot.press("A")
        key = f"{runs.ARCHIVE_DIR}/{B}"
        await until(pilot, lambda: key in table.shown_keys, what="archived B listed")
        assert "archived" in cell(table, key, "tags_s")
        assert screen.show_archived
        await to_row(pilot, key)
        await pilot.press("a")
        await until(pilot, lambda: B in table.shown_keys, what="B restored")
        assert fx["b"].is_dir() and key not in table.shown_keys
        await pilot.press("A")
        # the filter word `archived` lists them too
        await to_row(pilot, B)
        await pilot.press("a", "y")
        await until(pilot, lambda: B not in table.shown_keys)
        screen.query_one("#filter", Input).value = "archived"
        await until(pilot, lambda: table.shown_keys == [key], what="only archived")


async def test_read_only_turns_the_management_keys_off(fx):
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await loaded(pilot)
        await to_row(pilot, A)
        bound = {b.binding.action for b in screen.active_bindings.values()}
        assert not {"edit_tags", "delete", "archive", "resume"} & bound
        assert "copy_command" in bound
        for action in ("edit_tags", "delete", "archive", "resume"):
            getattr(screen, f"action_{action}")()  # however it is reached
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen) and fx["a"].is_dir()
        assert not (fx["a"] / runs.NOTES_JSON).exists()


# --------------------------------------------------------------------------- resume, command line


async def test_r_resumes_a_resumable_run_with_the_cli_checks(fx, monkeypatch):
    started = []

    def fake_resume(run_dir, **kw):
        started.append(Path(run_dir))
        return launch.RunHandle(Path(run_dir), subprocess.Popen(["true"]))

    monkeypatch.setattr(launch, "resume_run", fake_resume)
    app = make_app()
    tracked = []
    monkeypatch.setattr(app, "track", tracked.append)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        for key in (RUNNING, A, LOST):  # running; finished; lost but no last.pt: refused
            await to_row(pilot, key)
            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert isinstance(app.screen, RunsScreen)
        assert started == []
        (fx["lost"] / "last.pt").write_bytes(b"")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, LiveRunScreen), what="live screen")
        assert started == [Path("runs") / LOST] and app.screen.path == started[0]
        assert [p.args for p in tracked] == [["true"]]  # tracked: reaped when it ends
        tracked[0].wait()


async def test_y_copies_the_command_line(fx, monkeypatch):
    app = make_app()
    copied = []
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await loaded(pilot)
        await to_row(pilot, A)
        await pilot.press("y")
        cfg = (Path("runs") / A / "config.json").resolve()
        # the app's runs dir (./runs) is not the default one ($SLR_RUNS_DIR of the tests)
        assert copied == [f"slr run --config {cfg} --runs-dir {Path('runs').resolve()}"]
        monkeypatch.setenv("SLR_RUNS_DIR", str(Path("runs").resolve()))
        assert screen.command_line(screen.table.current_row()) == f"slr run --config {cfg}"


# --------------------------------------------------------------------------- ? help


def help_text(app) -> str:
    return str(app.screen.query_one("#help-keys", Static).render())


async def test_question_mark_lists_every_key_of_each_screen(fx):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = help_text(app)
        for b in RunsScreen.BINDINGS:  # hidden ones too (w, e, d, a, A, r, y)
            assert b.description in text, b
        for words in ("open", "mark", "sort", "quit"):  # the table's keys, the app's
            assert words in text
        await pilot.press("question_mark")  # ? again closes
        assert isinstance(app.screen, RunsScreen)
        # on the live screen: its own keys
        await to_row(pilot, A)
        await pilot.press("enter")
        assert isinstance(app.screen, LiveRunScreen)
        live = app.screen
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen) and app.screen.target is live
        text = help_text(app)
        by_key: dict[str, list[str]] = {}  # a key bound twice (3, t): one of them is on
        for b in live.BINDINGS:
            if live.check_action(b.action, ()) is not False:
                by_key.setdefault(b.key, []).append(b.description)
        assert len(by_key) > 20
        for key, descriptions in by_key.items():
            assert any(d in text for d in descriptions), key
        await pilot.press("escape")
        assert app.screen is live
        await pilot.press("escape")
        # ? typed into the filter is text, not the key list
        await pilot.press("slash", "question_mark")
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.query_one("#filter", Input).value == "?"


async def test_read_only_help_leaves_out_the_keys_that_are_off(fx):
    app = make_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        text = help_text(app)
        assert "copy command line" in text and "move to trash" not in text


# --------------------------------------------------------------------------- snapshots


def _tagged(fx) -> None:
    runs.update_notes(fx["a"], add=["baseline", "paper"], note="the reference run")
    runs.update_notes(fx["b"], add=["lr-1e-3"])
    runs.update_run_json(fx["a"], {"results": {"test": {"accuracy": 0.9123}}})
    runs.update_run_json(fx["b"], {"results": {"test": {"accuracy": 0.8571}}})


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_snapshot_runs_with_tags(fx, snap_compare, size):
    _tagged(fx)

    async def before(pilot):
        await until(pilot, lambda: pilot.app.screen.scans >= 1)
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=before)


def test_snapshot_help_narrow(fx, snap_compare):
    async def before(pilot):
        await until(pilot, lambda: pilot.app.screen.scans >= 1)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=before)
