"""New run: pick a dataset, then a preset that fits it, edit common fields as overrides,
preview the effective config, launch. For a dataset root, a panel shows the report of the
engine's ``check`` job (``python -m engine check``, :func:`slr_tui.launch.start_check`: the
data sources import torch, the TUI does not), and ``x`` opens the landmark extraction
screen. A ROI cache (or a folder with the guide's meta.csv) gets the translation presets;
the built-in translation demo needs no root.

Launching starts ``python -m engine train ...`` in its own session and process group
(:func:`slr_tui.launch.start_run`), so the run survives the app closing or the SSH
connection dropping; then the live screen opens.

What the screen shows is what ``slr run --preset P --data-root R --set ...`` would run:
the summary line and the config preview are of the resolved config (preset < dataset root
< the form's overrides, :func:`engine.config.resolve`), the preview listing what differs
from the preset first, highlighted. A field the user edited keeps its value when another
preset or dataset is picked (and when the catalog arrives late): no edit is lost.
"""

from __future__ import annotations

import os
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

from engine import catalog, runs
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


CHANGED_STYLE = "bold yellow"
LANDMARK_FORMAT = "slr-landmarks"  # dataset.json of a landmark cache (engine/data/landmark_cache)
# (label, config path) of the summary line
SUMMARY_ITEMS = [
    ("model", "model.name"),
    ("data", "data.source"),
    ("batch", "data.batch_size"),
    ("epochs", "training.max_epochs"),
    ("lr", "optim.lr"),
    ("wd", "optim.weight_decay"),
    ("schedule", "optim.scheduler"),
    ("warmup", "optim.warmup_ratio"),
    ("smoothing", "training.label_smoothing"),
    ("class weights", "training.class_weighted"),
    ("patience", "training.patience"),
    ("grad clip", "training.grad_clip"),
    ("device", "training.device"),
]


def _shown(v: Any) -> str:
    """A value as the form and the summary show it (``0.003``, not ``0.0030000``)."""
    if v is None:
        return ""
    return f"{v:g}" if isinstance(v, float) else str(v)


def _scalar(v: Any) -> str:
    """A leaf value as one line of YAML (``null``, ``[128, 64]``, ``'a: b'``)."""
    text = yaml.safe_dump(v, default_flow_style=True, width=10**6, allow_unicode=True)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def sniff_source(path: str | Path) -> str | None:
    """The data source a dataset root's files say it is for, when its name does not: an ROI
    cache or the guide's meta.csv (``translation``), a landmark cache (``landmarks``), a
    ``labels.csv`` beside .npy/.npz arrays (``features``). A few stats and one short
    directory listing per folder, for a worker thread; never raises."""
    root = Path(path).expanduser()
    if settings_mod.roi_root(root):
        return "translation"
    try:
        meta = runs.read_json(root / "dataset.json")
        if meta and meta.get("format") == LANDMARK_FORMAT:
            return "landmarks"
        if (root / "labels.csv").is_file():
            for folder in (root, root / "features"):
                if not folder.is_dir():
                    continue
                with os.scandir(folder) as it:
                    for i, e in enumerate(it):
                        if e.name.endswith((".npy", ".npz")):
                            return "features"
                        if i > 2000:  # a huge folder: the first entries tell enough
                            break
    except OSError:
        return None
    return None


def sample_noun(data: dict[str, Any]) -> str:
    """What one training sample of a source is, for "N per class": videos only for the
    video sources; arrays (features), windows or recordings (sequences_csv, by
    ``window_size``), recordings (landmark caches)."""
    source = data.get("source")
    entry = catalog.find_source(source)
    if entry is not None and entry.videos:
        return "videos"
    if source == "features":
        return "arrays"
    if source == "sequences_csv":
        return "windows" if data.get("window_size") else "recordings"
    if source in ("landmarks", "synthetic"):
        return "recordings"
    return "samples"


def config_changes(base: dict[str, Any], cfg: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (preset value, effective value)}`` for every key that differs; a key
    one side lacks is ``None`` there (a switch of source or model drops keys)."""
    a, b = cfgmod.flatten(base), cfgmod.flatten(cfg)
    out: dict[str, tuple[Any, Any]] = {}
    for key in [*b, *(k for k in a if k not in b)]:
        if a.get(key, _MISSING) != b.get(key, _MISSING):
            out[key] = (a.get(key), b.get(key))
    return out


_MISSING = object()


def preset_summary(
    cfg: dict[str, Any],
    changed: dict[str, tuple[Any, Any]] | None = None,
    not_applied: list[str] | None = None,
) -> Text:
    """The key hyperparameters of the effective config on one line, the overridden ones
    highlighted, every other override after them and the items that do not apply (in
    red); then the description."""
    changed = changed or {}
    out = Text()
    for i, (label, dotted) in enumerate(SUMMARY_ITEMS):
        v = _get(cfg, dotted)
        if dotted == "training.class_weighted":
            v = "yes" if v else "no"
        if i:
            out.append(" · ", style="dim")
        out.append(f"{label} ", style="dim")
        out.append(_shown(v) or "none", style=CHANGED_STYLE if dotted in changed else "")
    # every other override (the dataset root is the dataset panel's: not repeated here)
    listed = {d for _, d in SUMMARY_ITEMS} | {"name", "description", "data.root"}
    others = [k for k in changed if k not in listed]
    if others:
        out.append(" · also ", style="dim")
        for i, k in enumerate(others):
            if i:
                out.append(", ", style="dim")
            out.append(f"{k}={_scalar(changed[k][1])}", style=CHANGED_STYLE)
    if not_applied:
        out.append(f" · not applied: {' '.join(not_applied)}", style="bold red")
    if cfg.get("description"):
        out.append("\n" + str(cfg["description"]), style="italic dim")
    return out


def diff_view(
    preset: str, base: dict[str, Any], cfg: dict[str, Any], changed: dict[str, tuple[Any, Any]]
) -> Text:
    """What differs from the preset first (``key: preset -> effective``), highlighted; then
    the whole effective config as YAML with those keys highlighted."""
    out = Text()
    if changed:
        out.append(f"changed from preset {preset} ({len(changed)}):\n", style="bold")
        for key, (old, new) in changed.items():
            out.append(f"  {key}: ", style=CHANGED_STYLE)
            out.append(_scalar(old), style="dim")
            out.append(" -> ", style="dim")
            out.append(_scalar(new) if key in cfgmod.flatten(cfg) else "(dropped)", CHANGED_STYLE)
            out.append("\n")
    else:
        out.append(f"as preset {preset} (no overrides)\n", style="dim")
    out.append("effective config:\n", style="bold")
    _yaml_lines(cfg, changed, "", 0, out)
    out.rstrip()
    return out


def _yaml_lines(
    d: dict[str, Any], changed: dict[str, Any], prefix: str, depth: int, out: Text
) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        pad = "  " * depth
        if isinstance(v, dict) and v:
            out.append(f"{pad}{k}:\n")
            _yaml_lines(v, changed, key + ".", depth + 1, out)
            continue
        line = f"{pad}{k}: {_scalar(v)}"
        if key in changed:
            out.append(line, style=CHANGED_STYLE)
            out.append("  *\n", style=CHANGED_STYLE)
        else:
            out.append(line + "\n")


class NewRunScreen(Screen):
    BINDINGS = [
        Binding("ctrl+l", "launch", "launch", priority=True, tooltip="start the run as shown"),
        Binding("f2", "settings", "settings", tooltip="dataset roots and other settings"),
        Binding("x", "extract", "extract landmarks", tooltip="landmarks of the dataset's videos"),
        Binding("escape", "back", "back", tooltip="back to the runs list"),
    ]

    class Catalog(Message):
        def __init__(
            self, datasets: list[dict[str, Any]], presets: list[dict[str, Any]], error: str | None
        ) -> None:
            super().__init__()
            self.datasets, self.presets, self.error = datasets, presets, error

    class Preview(Message):
        """The resolved config of the form (None when the overrides do not resolve), the
        error that stops a launch, and the form's state it is of."""

        def __init__(
            self,
            cfg: dict[str, Any] | None,
            error: str | None,
            seq: int,
            not_applied: list[str] | None = None,
        ) -> None:
            super().__init__()
            self.cfg, self.error, self.seq = cfg, error, seq
            self.not_applied = not_applied or []  # the --set items that do not resolve

    class DataChecked(Message):
        def __init__(
            self,
            key: CheckKey,
            report: dict[str, Any] | None,
            error: str | None,
            noun: str = "samples",
        ):
            super().__init__()
            self.key, self.report, self.error, self.noun = key, report, error, noun

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
        self.effective: dict[str, Any] | None = None  # the resolved config of the form
        self.not_applied: list[str] = []  # --set items of the form that do not resolve
        self.changed: dict[str, tuple[Any, Any]] = {}  # what differs from the preset
        self.summary_text = Text()  # the summary line and the preview, as last shown
        self.preview_text = Text()
        # what the form showed of the preset in each field (an input that holds anything
        # else was edited by the user and keeps its value when the preset changes)
        self.shown: dict[str, str] = {input_id: "" for input_id, _, _ in FIELDS}
        self.shown_device = "auto"
        self.launching = False
        self._preview_timer = None
        # data check results per (preset, root, data overrides), for the screen's lifetime
        self.data_checks: dict[CheckKey, tuple[dict[str, Any] | None, str | None, str]] = {}
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
            yield Static("", id="nr-error")  # wraps: an error is shown whole
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
            # by name, else by what the folder holds (an ROI cache: the translation presets;
            # labels.csv and arrays: the features presets)
            source = settings_mod.source_of(name, path) or sniff_source(path)
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
                    "source": settings_mod.source_of(name, path) or sniff_source(path),
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
        # the same dataset again (the catalog read anew): the preset picked stays as it is
        same = self.dataset is not None and self.dataset["key"] == ds["key"]
        self.dataset = ds
        self.refresh_bindings()
        fit = self.fitting_presets(ds)
        pl = self.query_one("#preset-list", OptionList)
        keep = self.preset["name"] if self.preset else None
        pl.clear_options()
        for p in fit:
            pl.add_option(Option(p["name"], id=p["name"]))
        if not fit:
            self.preset = None
            self.query_one("#preset-info", Static).update("no preset fits this dataset")
            self._schedule_preview()
            return
        names = [p["name"] for p in fit]
        idx = names.index(keep) if same and keep in names else self.preselect(fit, keep)
        pl.highlighted = idx
        self._pick_preset(fit[idx])

    def preselect(self, fit: list[dict[str, Any]], keep: str | None) -> int:
        """The preset to offer first: the one picked before when it is among ``fit`` and
        validates with the chosen data, else the first of ``fit`` that does (it resolves
        with the dataset root and the form's overrides, and its source gets the root it
        needs), else the first."""
        names = [p["name"] for p in fit]
        order = list(range(len(fit)))
        if keep in names:
            order.insert(0, order.pop(names.index(keep)))
        for i in order:
            if self.validates(fit[i]):
                return i
        return 0

    def validates(self, p: dict[str, Any]) -> bool:
        try:
            sets, extra = self.overrides_for(p)
            launch.check_data_root(cfgmod.resolve(preset=p["name"], sets=sets, extra=extra))
        except ConfigError:
            return False
        return True

    def _pick_preset(self, p: dict[str, Any]) -> None:
        changed = self.preset is None or self.preset["name"] != p["name"]
        self.preset = p
        if changed:
            self.effective, self.changed = None, {}
            self.query_one("#preset-info", Static).update(preset_summary(p))
            for input_id, dotted, _ in FIELDS:
                box = self.query_one(f"#{input_id}", Input)
                new = _shown(_get(p, dotted))
                if box.value == self.shown[input_id]:  # not edited: the new preset's value
                    box.value = new
                self.shown[input_id] = new
            sel = self.query_one("#ov-device", Select)
            dev = _get(p, "training.device") or "auto"
            if sel.value == self.shown_device:
                sel.value = dev
            self.shown_device = dev
        self._schedule_preview()

    def _current_option(self, event: OptionList.OptionHighlighted) -> bool:
        """The event is of the option the list highlights now (not one posted before the
        list was refilled for another dataset: acting on that would pick a preset the list
        does not show)."""
        ol = event.option_list
        i = ol.highlighted
        return i is not None and i < ol.option_count and ol.get_option_at_index(i) is event.option

    @on(OptionList.OptionHighlighted, "#dataset-list")
    def _dataset_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if not self._current_option(event):
            return
        ds = next((d for d in self.datasets if d["key"] == event.option.id), None)
        if ds is not None and ds is not self.dataset:
            self._pick_dataset(ds)

    @on(OptionList.OptionHighlighted, "#preset-list")
    def _preset_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if not self._current_option(event):
            return
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
        """``(--set items, extra)`` of the form for the current preset."""
        return self.overrides_for(self.preset or {})

    def overrides_for(self, p: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """``(--set items, extra)`` from the form: only fields that differ from preset
        ``p``, then the free-form items; extra holds the dataset root. Read from the
        widgets when called (a value typed just before the launch key is in)."""
        sets: list[str] = []
        for input_id, dotted, _ in FIELDS:
            text = self.query_one(f"#{input_id}", Input).value.strip()
            if text and text != _shown(_get(p, dotted)):
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
            self.on_new_run_screen_preview(self.Preview(None, str(exc), self.preview_seq))
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
            # what the other overrides make of the preset, and which items do not apply
            good: list[str] = []
            bad: list[str] = []
            for item in sets:
                try:
                    cfgmod.resolve(preset=preset, sets=[*good, item], extra=extra)
                    good.append(item)
                except ConfigError:
                    bad.append(item)
            try:
                part = cfgmod.resolve(preset=preset, sets=good, extra=extra).to_dict()
            except ConfigError:
                part = None
            self.post_message(self.Preview(part, str(exc), seq, bad))
            return
        try:
            launch.check_data_root(cfg)
            err = None
        except ConfigError as exc:
            err = str(exc)
        self.post_message(self.Preview(cfg.to_dict(), err, seq))

    def on_new_run_screen_preview(self, msg: Preview) -> None:
        if msg.seq != self.preview_seq or self.preset is None:
            return  # a newer preview is on its way
        self.preview_error = msg.error
        base, name = self.preset, self.preset["name"]
        self.not_applied = msg.not_applied
        if msg.cfg is not None and not msg.not_applied:
            self.effective = msg.cfg
            self.changed = config_changes(base, msg.cfg)
            self.summary_text = preset_summary(msg.cfg, self.changed)
            self.preview_text = diff_view(name, base, msg.cfg, self.changed)
        else:  # some overrides do not resolve: what the others make, and which do not apply
            part = msg.cfg if msg.cfg is not None else base
            self.effective = None  # nothing that can launch
            self.changed = config_changes(base, part)
            bad = " ".join(msg.not_applied) or "the overrides"
            self.summary_text = preset_summary(part, self.changed, msg.not_applied or [bad])
            head = Text(f"not applied (see the error below): {bad}\n", style="bold red")
            self.preview_text = head + diff_view(name, base, part, self.changed)
        self.query_one("#preset-info", Static).update(self.summary_text)
        self.query_one("#preview", Static).update(self.preview_text)
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
        noun = sample_noun(cfg.to_dict()["data"])  # what "N per class" counts
        with job:
            if launch.follow(job, cancelled=lambda: worker.is_cancelled) is None:
                return  # a newer selection cancelled it (the job was killed)
            report, error = job.outcome()
        self.post_message(self.DataChecked(key, report, error, noun))

    def on_new_run_screen_data_checked(self, msg: DataChecked) -> None:
        self.data_checks[msg.key] = (msg.report, msg.error, msg.noun)
        if msg.key == self.data_key:
            panel = self.query_one("#data-check", DataCheckPanel)
            panel.show_result(msg.report, msg.error, msg.noun)

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
