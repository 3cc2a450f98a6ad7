"""New run: pick a dataset, then a preset that fits it, edit common fields as overrides,
preview the effective config, launch. For a dataset root, a panel shows the report of the
engine's ``check`` job (``python -m engine check``, :func:`slr_tui.launch.start_check`: the
data sources import torch, the TUI does not), and ``x`` opens the landmark extraction
screen. A ROI cache (or a folder with the guide's meta.csv) gets the translation presets;
the built-in translation demo needs no root.

Launching starts ``python -m engine train ...`` in its own session and process group
(:func:`slr_tui.launch.start_run`), so the run survives the app closing or the SSH
connection dropping; then the live screen opens.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from engine import catalog
from engine import config as cfgmod
from engine.config import ConfigError
from slr_tui import launch
from slr_tui import settings as settings_mod
from slr_tui.widgets.data_check import DataCheckPanel

DEMO_KEY = "demo"
TRANSLATION_DEMO_KEY = "demo-translation"
PREVIEW_DELAY_S = 0.15
CheckKey = tuple[str, str, tuple[str, ...]]  # (preset, root, data.* overrides)

# (input id, config path, label)
FIELDS = [
    ("ov-epochs", "training.max_epochs", "epochs"),
    ("ov-batch", "data.batch_size", "batch size"),
    ("ov-lr", "optim.lr", "lr"),
]


def _get(d: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part, {}) if isinstance(d, dict) else {}
    return None if d == {} else d


def data_sets(sets: list[str]) -> list[str]:
    """The ``data.*`` overrides that can change what a dataset check or extraction sees."""
    return [s for s in sets if s.startswith("data.") and not s.startswith("data.batch_size=")]


def needs_root(preset: dict[str, Any]) -> bool:
    """The preset's data source reads a dataset root (the synthetic ones make their own)."""
    src = catalog.find_source((preset.get("data") or {}).get("source"))
    return src is not None and src.root_hint is not None


def preset_summary(cfg: dict[str, Any]) -> Text:
    """Description and key hyperparameters of one preset."""
    d, m, o, t = (cfg.get(k, {}) for k in ("data", "model", "optim", "training"))
    out = Text()
    if cfg.get("description"):
        out.append(cfg["description"] + "\n", style="italic")
    items = [
        ("model", m.get("name")),
        ("data", d.get("source")),
        ("batch", d.get("batch_size")),
        ("epochs", t.get("max_epochs")),
        ("lr", o.get("lr")),
        ("weight decay", o.get("weight_decay")),
        ("schedule", o.get("scheduler")),
        ("warmup", o.get("warmup_ratio")),
        ("label smoothing", t.get("label_smoothing")),
        ("class-weighted", "yes" if t.get("class_weighted") else "no"),
        ("patience", t.get("patience")),
        ("grad clip", t.get("grad_clip")),
        ("device", t.get("device")),
    ]
    for i, (k, v) in enumerate(items):
        if i:
            out.append(" · ", style="dim")
        out.append(f"{k} ", style="dim")
        out.append(f"{v:g}" if isinstance(v, float) else str(v))
    return out


class NewRunScreen(Screen):
    BINDINGS = [
        Binding("ctrl+l", "launch", "launch", priority=True),
        Binding("f2", "settings", "settings"),
        Binding("x", "extract", "extract landmarks"),
        Binding("escape", "back", "back"),
    ]

    class Catalog(Message):
        def __init__(
            self, datasets: list[dict[str, Any]], presets: list[dict[str, Any]], error: str | None
        ) -> None:
            super().__init__()
            self.datasets, self.presets, self.error = datasets, presets, error

    class Preview(Message):
        def __init__(self, text: str, error: str | None, seq: int) -> None:
            super().__init__()
            self.text, self.error, self.seq = text, error, seq

    class DataChecked(Message):
        def __init__(self, key: CheckKey, report: dict[str, Any] | None, error: str | None):
            super().__init__()
            self.key, self.report, self.error = key, report, error

    class Launched(Message):
        def __init__(self, run_dir: Path | None, error: str | None, proc: Any = None) -> None:
            super().__init__()
            self.run_dir, self.error, self.proc = run_dir, error, proc

    def __init__(self) -> None:
        super().__init__()
        self.datasets: list[dict[str, Any]] = []
        self.presets: list[dict[str, Any]] = []
        self.dataset: dict[str, Any] | None = None
        self.preset: dict[str, Any] | None = None
        self.preview_seq = 0
        self.preview_error: str | None = None
        self.launching = False
        self._preview_timer = None
        # data check results per (preset, root, data overrides), for the screen's lifetime
        self.data_checks: dict[CheckKey, tuple[dict[str, Any] | None, str | None]] = {}
        self.data_key: CheckKey | None = None  # what the panel is about
        self.extracts: dict[str, Any] = {}  # output folder -> extraction process started here

    def compose(self) -> ComposeResult:
        yield Static(
            "[b]new run[/b]  pick a dataset, then a preset; edit fields; ctrl+l launches",
            classes="title-bar",
        )
        with Horizontal(id="nr-top"):
            with Vertical(id="nr-datasets", classes="panel"):
                yield OptionList(id="dataset-list")
            with Vertical(id="nr-presets", classes="panel"):
                yield OptionList(id="preset-list")
            with VerticalScroll(id="nr-overrides", classes="panel", can_focus=False):
                for input_id, _, label in FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(label, classes="field-label")
                        yield Input(id=input_id, classes="field-input", compact=True)
                with Horizontal(classes="field"):
                    yield Label("device", classes="field-label")
                    yield Select(
                        [("auto", "auto"), ("cpu", "cpu"), ("cuda", "cuda")],
                        value="auto",
                        allow_blank=False,
                        id="ov-device",
                        classes="field-input",
                        compact=True,
                    )
                yield Label("more: section.key=value ...", classes="field-label-wide")
                yield Input(
                    placeholder="e.g. model.hidden_size=32 training.patience=3",
                    id="ov-sets",
                    compact=True,
                )
        yield Static("", id="preset-info")
        with Horizontal(id="nr-bottom"):
            with VerticalScroll(id="nr-preview", classes="panel"):
                yield Static("", id="preview")
            with VerticalScroll(id="nr-data", classes="panel"):
                yield DataCheckPanel(id="data-check")
        with Horizontal(id="nr-actions"):
            yield Button("Launch (ctrl+l)", id="launch", variant="success", compact=True)
            yield Static("", id="nr-error")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#nr-datasets").border_title = "1 dataset"
        self.query_one("#nr-presets").border_title = "2 preset"
        self.query_one("#nr-overrides").border_title = "3 overrides"
        self.query_one("#nr-preview").border_title = "effective config"
        self.query_one("#nr-data").border_title = "data check"
        self.query_one("#nr-data").display = False
        self.query_one("#dataset-list", OptionList).focus()
        self.load_catalog()

    def on_screen_resume(self) -> None:
        if self.presets:  # settings may have named new roots
            self.load_catalog()

    # ------------------------------------------------------------------ catalog

    @work(thread=True, exclusive=True, exit_on_error=False, group="nr-catalog")
    def load_catalog(self) -> None:
        settings = self.app.settings
        datasets: list[dict[str, Any]] = [
            {
                "key": DEMO_KEY,
                "label": "demo",
                "detail": "built-in synthetic signs",
                "source": "synthetic",
                "path": None,
            },
            {
                "key": TRANSLATION_DEMO_KEY,
                "label": "translation demo",
                "detail": "built-in synthetic signed sentences",
                "source": "synthetic_translation",
                "path": None,
            },
        ]
        for name, path in settings.dataset_roots.items():
            source = settings_mod.source_of(name, path)
            if source is None and settings_mod.roi_root(path):
                source = "translation"  # an ROI cache: the translation presets
            datasets.append(
                {
                    "key": f"named:{name}",
                    "label": name,
                    "detail": path,
                    "source": source,
                    "path": path,
                }
            )
        known = {str(Path(d["path"]).expanduser().resolve()) for d in datasets if d["path"]}
        for name, path in settings_mod.detect_dataset_roots(self.app.detect_parents).items():
            if path in known:
                continue
            datasets.append(
                {
                    "key": f"found:{path}",
                    "label": name,
                    "detail": f"{path} (detected)",
                    "source": settings_mod.source_of(name, path),
                    "path": path,
                }
            )
        presets: list[dict[str, Any]] = []
        error = None
        for name in cfgmod.preset_names():
            try:
                presets.append(cfgmod.resolve(preset=name).to_dict())
            except ConfigError as exc:
                error = str(exc)
        self.post_message(self.Catalog(datasets, presets, error))

    def on_new_run_screen_catalog(self, msg: Catalog) -> None:
        self.datasets, self.presets = msg.datasets, msg.presets
        if msg.error:
            self.notify(msg.error, severity="error")
        ol = self.query_one("#dataset-list", OptionList)
        keep = self.dataset["key"] if self.dataset else DEMO_KEY
        ol.clear_options()
        for d in self.datasets:
            prompt = Text(d["label"], style="bold")
            prompt.append(f"\n{d['detail']}", style="dim")
            ol.add_option(Option(prompt, id=d["key"]))
        keys = [d["key"] for d in self.datasets]
        ol.highlighted = keys.index(keep) if keep in keys else 0
        self._pick_dataset(self.datasets[ol.highlighted or 0])

    def fitting_presets(self, ds: dict[str, Any]) -> list[dict[str, Any]]:
        src = ds.get("source")
        if ds["key"] == DEMO_KEY:
            return [p for p in self.presets if p["data"]["source"] == "synthetic"]
        if ds["key"] == TRANSLATION_DEMO_KEY:
            return [p for p in self.presets if p["data"]["source"] == "synthetic_translation"]
        if src:
            fit = [p for p in self.presets if p["data"]["source"] == src]
            if fit:
                if src == "translation":  # and the demo, to try the recipe first
                    fit += [
                        p for p in self.presets if p["data"]["source"] == "synthetic_translation"
                    ]
                return fit
        return [p for p in self.presets if needs_root(p)]

    def _pick_dataset(self, ds: dict[str, Any]) -> None:
        self.dataset = ds
        self.refresh_bindings()
        fit = self.fitting_presets(ds)
        pl = self.query_one("#preset-list", OptionList)
        keep = self.preset["name"] if self.preset else None
        pl.clear_options()
        for p in fit:
            pl.add_option(Option(p["name"], id=p["name"]))
        names = [p["name"] for p in fit]
        if not fit:
            self.preset = None
            self.query_one("#preset-info", Static).update("no preset fits this dataset")
            self._schedule_preview()
            return
        idx = names.index(keep) if keep in names else 0
        pl.highlighted = idx
        self._pick_preset(fit[idx])

    def _pick_preset(self, p: dict[str, Any]) -> None:
        changed = self.preset is None or self.preset["name"] != p["name"]
        self.preset = p
        self.query_one("#preset-info", Static).update(preset_summary(p))
        if changed:
            for input_id, dotted, _ in FIELDS:
                v = _get(p, dotted)
                self.query_one(f"#{input_id}", Input).value = (
                    "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))
                )
            self.query_one("#ov-device", Select).value = _get(p, "training.device") or "auto"
        self._schedule_preview()

    @on(OptionList.OptionHighlighted, "#dataset-list")
    def _dataset_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        ds = next((d for d in self.datasets if d["key"] == event.option.id), None)
        if ds is not None and ds is not self.dataset:
            self._pick_dataset(ds)

    @on(OptionList.OptionHighlighted, "#preset-list")
    def _preset_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        p = next((p for p in self.presets if p["name"] == event.option.id), None)
        if p is not None:
            self._pick_preset(p)

    @on(OptionList.OptionSelected, "#dataset-list")
    def _dataset_selected(self) -> None:
        self.query_one("#preset-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#preset-list")
    def _preset_selected(self) -> None:
        self.query_one("#ov-epochs", Input).focus()

    # ------------------------------------------------------------------ overrides

    def overrides(self) -> tuple[list[str], dict[str, Any]]:
        """``(--set items, extra)`` from the form: only fields that differ from the preset,
        then the free-form items; extra holds the dataset root."""
        p = self.preset or {}
        sets: list[str] = []
        for input_id, dotted, _ in FIELDS:
            text = self.query_one(f"#{input_id}", Input).value.strip()
            v = _get(p, dotted)
            shown = "" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))
            if text and text != shown:
                sets.append(f"{dotted}={text}")
        dev = self.query_one("#ov-device", Select).value
        if isinstance(dev, str) and dev != (_get(p, "training.device") or "auto"):
            sets.append(f"training.device={dev}")
        more = self.query_one("#ov-sets", Input).value.strip()
        if more:
            try:
                sets += shlex.split(more)
            except ValueError as exc:
                raise ConfigError(f"more overrides: {exc}") from None
        extra: dict[str, Any] = {}
        ds = self.dataset or {}
        if ds.get("path") and needs_root(p):  # a synthetic preset makes its own data
            extra = {"data": {"root": str(Path(ds["path"]).expanduser())}}
        return sets, extra

    @on(Input.Changed)
    @on(Select.Changed)
    def _form_changed(self) -> None:
        self._schedule_preview()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.focus_next()

    def _schedule_preview(self) -> None:
        if self._preview_timer is not None:
            self._preview_timer.stop()
        self._preview_timer = self.set_timer(PREVIEW_DELAY_S, self._start_preview)

    def _start_preview(self) -> None:
        self._preview_timer = None
        if self.preset is None:
            self.query_one("#preview", Static).update("")
            self._show_data_check(None)
            return
        self.preview_seq += 1
        try:
            sets, extra = self.overrides()
        except ConfigError as exc:
            self.on_new_run_screen_preview(self.Preview("", str(exc), self.preview_seq))
            return
        self.preview(self.preset["name"], sets, extra, self.preview_seq)
        root = (extra.get("data") or {}).get("root")
        key = (self.preset["name"], root, tuple(data_sets(sets))) if root else None
        self._show_data_check(key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="nr-preview")
    def preview(self, preset: str, sets: list[str], extra: dict[str, Any], seq: int) -> None:
        try:
            cfg = cfgmod.resolve(preset=preset, sets=sets, extra=extra)
        except ConfigError as exc:
            self.post_message(self.Preview("", str(exc), seq))
            return
        text = yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None, width=88)
        try:
            launch.check_data_root(cfg)
            err = None
        except ConfigError as exc:
            err = str(exc)
        self.post_message(self.Preview(text, err, seq))

    def on_new_run_screen_preview(self, msg: Preview) -> None:
        if msg.seq != self.preview_seq:
            return  # a newer preview is on its way
        self.preview_error = msg.error
        if msg.text:
            self.query_one("#preview", Static).update(Text(msg.text))
        self.query_one("#nr-error", Static).update(Text(msg.error or "", style="bold red"))

    # ------------------------------------------------------------------ data check

    def _show_data_check(self, key: CheckKey | None) -> None:
        """Show the check of ``key`` (cached, or start it); hide the panel without a root."""
        box = self.query_one("#nr-data")
        panel = self.query_one("#data-check", DataCheckPanel)
        if key is None:
            box.display = False
            self.data_key = None
            return
        box.display = True
        if key == self.data_key:
            return  # shown already, or its check is on its way
        self.data_key = key
        if key in self.data_checks:
            panel.show_result(*self.data_checks[key])
            return
        panel.show_checking(key[1])
        self.check_data(key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="nr-data")
    def check_data(self, key: CheckKey) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        preset, root, sets = key
        try:
            cfg = cfgmod.resolve(preset=preset, sets=list(sets), extra={"data": {"root": root}})
            launch.check_data_root(cfg)
            job = launch.start_check(cfg)
        except (ConfigError, OSError) as exc:
            self.post_message(self.DataChecked(key, None, str(exc)))
            return
        with job:
            if launch.follow(job, cancelled=lambda: worker.is_cancelled) is None:
                return  # a newer selection cancelled it (the job was killed)
            report, error = job.outcome()
        self.post_message(self.DataChecked(key, report, error))

    def on_new_run_screen_data_checked(self, msg: DataChecked) -> None:
        self.data_checks[msg.key] = (msg.report, msg.error)
        if msg.key == self.data_key:
            self.query_one("#data-check", DataCheckPanel).show_result(msg.report, msg.error)

    # ------------------------------------------------------------------ extract

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "extract":  # only for a dataset root (hidden for the demo)
            return bool(self.dataset and self.dataset.get("path"))
        return True

    def action_extract(self) -> None:
        if not (self.dataset and self.dataset.get("path")):
            return
        if self.preset is None:
            self.notify("pick a preset first (it names the dataset's source)", severity="warning")
            return
        try:
            sets, extra = self.overrides()
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return
        from slr_tui.screens.extract import ExtractScreen

        root = str(Path(self.dataset["path"]).expanduser())
        self.app.push_screen(ExtractScreen(self.preset["name"], root, data_sets(sets), self))

    # ------------------------------------------------------------------ launch

    def action_launch(self) -> None:
        if self.launching:
            return
        if self.preset is None:
            self.notify("pick a preset first", severity="warning")
            return
        try:
            sets, extra = self.overrides()
        except ConfigError as exc:
            self.notify(str(exc), severity="error")
            return
        self.launching = True
        self.query_one("#nr-error", Static).update(Text("launching...", style="cyan"))
        self.launch(self.preset["name"], sets, extra)

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    @work(thread=True, exclusive=True, exit_on_error=False, group="nr-launch")
    def launch(self, preset: str, sets: list[str], extra: dict[str, Any]) -> None:
        try:
            cfg = cfgmod.resolve(preset=preset, sets=sets, extra=extra)
            handle = launch.start_run(cfg, self.app.runs_root)
        except (ConfigError, OSError) as exc:
            self.post_message(self.Launched(None, str(exc)))
            return
        self.post_message(self.Launched(handle.run_dir, None, handle.proc))

    def on_new_run_screen_launched(self, msg: Launched) -> None:
        self.launching = False
        if msg.error or msg.run_dir is None:
            self.query_one("#nr-error", Static).update(
                Text(msg.error or "launch failed", style="bold red")
            )
            self.notify(msg.error or "launch failed", severity="error")
            return
        if msg.proc is not None:
            self.app.track(msg.proc)
        from slr_tui.screens.live import LiveRunScreen

        self.notify(f"started {msg.run_dir.name}")
        self.app.switch_screen(LiveRunScreen(msg.run_dir))

    def action_settings(self) -> None:
        from slr_tui.screens.settings import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_back(self) -> None:
        self.app.pop_screen()
