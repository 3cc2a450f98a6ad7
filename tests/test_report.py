"""`slr report` (issue 12, item 3): every file for a multi-class run, a binary run and a
two-run comparison, the LaTeX tables' shape, runs without an evaluation, translation runs,
and the most-confused block of a large confusion matrix. Runs come from
tests/fixtures_runs.py (the engine's own writers); figures are drawn at a low dpi."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import evaluate, runs
from slr_tui.cli import app
from slr_tui.report import figures as F
from slr_tui.report import folder_name
from slr_tui.report.confusion import block_mass, most_confused_classes, row_normalised
from slr_tui.report.tables import Table, latex_escape
from tests.fixtures_runs import _rewrite_epochs, predictions, write_binary_run, write_run

MULTI = "20250101-090000-demo_x"  # an id with a LaTeX special
BINARY = "20250110-090000-error-recognition-mlp"
SPECIAL = ["a_b", "50%", "R&D", "#1", "$x", "{y}", "~z", "^w", "back\\slash", "plain"]
DPI = ["--dpi", "30"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "runs"
    run = write_run(root, MULTI, with_eval=False)  # finished, evaluated below
    evaluate.write_eval(
        run / runs.EVAL_DIR,
        {"val": predictions(10, 60, 0), "test": predictions(10, 60, 1000)},
        SPECIAL,
        evaluate.default_thresholds(),
    )
    b = write_binary_run(root, BINARY, with_eval=False)
    splits = {"val": predictions(2, 60, 5), "test": predictions(2, 60, 6)}
    for s in splits.values():  # three windows per recording: grouped metrics
        s["groups"] = [f"rec{i // 3}" for i in range(60)]
    evaluate.write_eval(b / runs.EVAL_DIR, splits, ["ok", "error"], evaluate.default_thresholds())
    evaluate.write_threshold(b, 0.37, "best_f1")
    write_run(root, "20250104-090000-demo", status="failed", epochs=3, with_eval=False, error="x")
    return root


def _magic(path: Path) -> bytes:
    return path.read_bytes()[:4]


RUN_FIGURES = ["loss", "accuracy", "lr", "confusion", "per_class"]
BINARY_FIGURES = [*RUN_FIGURES, "threshold", "roc", "pr"]


def test_report_of_two_runs_writes_every_file(store, tmp_path):
    out = tmp_path / "out"
    res = invoke("report", MULTI, BINARY, "--runs-dir", str(store), "--out", str(out), *DPI)
    assert res.exit_code == 0, res.output
    assert f"{MULTI}: 5 figures" in res.output and f"{BINARY}: 8 figures" in res.output
    assert res.output.strip().splitlines()[-1].startswith(f"report of 2 runs written to {out}")
    expect: list[tuple[str, str, list[str]]] = [
        (MULTI, "fig", RUN_FIGURES),
        (MULTI, "table", ["summary", "per_class"]),
        (BINARY, "fig", BINARY_FIGURES),
        (BINARY, "table", ["summary", "per_class", "thresholds", "grouped"]),
        ("compare", "fig", ["curves-val_loss", "curves-train_loss", "curves-val_acc"]),
        ("compare", "table", ["metrics"]),
    ]
    html = (out / "index.html").read_text()
    for folder, kind, names in expect:
        for name in names:
            exts = ("png", "pdf") if kind == "fig" else ("md", "csv", "tex")
            for ext in exts:
                f = out / folder / f"{name}.{ext}"
                assert f.is_file() and f.stat().st_size > 0, f
            if kind == "fig":
                assert _magic(out / folder / f"{name}.png") == b"\x89PNG"
                assert _magic(out / folder / f"{name}.pdf") == b"%PDF"
                pdf = (out / folder / f"{name}.pdf").read_bytes()
                assert b"/Subtype /Image" not in pdf, name  # vector: no bitmap inside
                assert f"{folder}/{name}.png" in html  # each figure shown (caption)
            else:
                assert f"{folder}/{name}." in html
    # self-contained: every image is a data URI, no link or source leaves the file
    assert not re.search(r"https?://", html)
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == 5 + 8 + len(list((out / "compare").glob("*.png")))
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'href="(?!#)', html)  # only in-page anchors
    # the class names are escaped in the HTML (a raw "R&D" would be a stray entity)
    assert "R&amp;D" in html and "R&D" not in html
    # the grouped table: per-sample beside per-recording figures, from report.json
    rep = json.loads((store / BINARY / "eval" / "report.json").read_text())
    grouped = (out / BINARY / "grouped.csv").read_text().splitlines()
    assert grouped[1].startswith("Sub step level,") and grouped[2].startswith("Step level,")
    acc = round(rep["grouped"]["test"]["summary"]["accuracy"], 6)
    assert grouped[2].split(",")[1] == str(acc)


def _tex_rows(tex: str) -> tuple[str, list[str]]:
    body = tex.split("\\toprule\n", 1)[1].split("\\bottomrule", 1)[0]
    head, rows = body.split("\\midrule\n", 1)
    return head.strip(), [r for r in rows.strip().splitlines() if r.strip()]


def _amps(line: str) -> int:
    return len(re.findall(r"(?<!\\)&", line))


def test_latex_tables_have_the_shape_of_a_booktabs_table(store, tmp_path):
    out = tmp_path / "out"
    assert (
        invoke("report", MULTI, BINARY, "--runs-dir", str(store), "--out", str(out), *DPI).exit_code
        == 0
    )
    texs = sorted(out.rglob("*.tex"))
    assert len(texs) == 2 + 4 + 1
    for path in texs:
        tex = path.read_text()
        for env in ("table", "tabular"):
            assert tex.count(f"\\begin{{{env}}}") == tex.count(f"\\end{{{env}}}") == 1, path
        assert [tex.count(r) for r in ("\\toprule", "\\midrule", "\\bottomrule")] == [1, 1, 1]
        assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
        head, rows = _tex_rows(tex)
        ncols = len(re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1))
        assert _amps(head) == ncols - 1, path
        assert all(_amps(r) == ncols - 1 and r.endswith("\\\\") for r in rows), path
        # braces balance once the escaped ones are left out
        plain = tex.replace("\\{", "").replace("\\}", "")
        assert plain.count("{") == plain.count("}"), path
    per_class = (out / MULTI / "per_class.tex").read_text()
    for raw, esc in [
        ("a_b", "a\\_b"),
        ("50%", "50\\%"),
        ("R&D", "R\\&D"),
        ("#1", "\\#1"),
        ("$x", "\\$x"),
        ("{y}", "\\{y\\}"),
        ("~z", "\\textasciitilde{}z"),
        ("^w", "\\textasciicircum{}w"),
        ("back\\slash", "back\\textbackslash{}slash"),
    ]:
        assert esc in per_class, raw
    assert "demo\\_x" in per_class  # the run id in the caption
    # the best value of a column is bold: the comparison's accuracy, from report.json
    accs = {
        rid: json.loads((store / rid / "eval" / "report.json").read_text())["test"]["accuracy"]
        for rid in (MULTI, BINARY)
    }
    best = max(accs, key=accs.get)
    _, rows = _tex_rows((out / "compare" / "metrics.tex").read_text())
    for r in rows:
        cells = re.split(r"(?<!\\)&", r.removesuffix("\\\\"))
        is_best = latex_escape(best) == cells[0].strip()
        assert cells[2].strip() == (
            f"\\textbf{{{accs[best]:.4f}}}" if is_best else f"{min(accs.values()):.4f}"
        )
    # Markdown: the same best value in bold
    md = (out / "compare" / "metrics.md").read_text()
    assert f"**{accs[best]:.4f}**" in md


def test_table_bold_marks_every_tied_best_and_nothing_in_a_lone_column():
    t = Table("t", "t", ["name", "a", "b"], [["x", 0.5, 1.0], ["y", 0.5, None], ["z", 0.2, None]])
    t.best = {1: "max", 2: "max"}
    assert t.best_rows() == {1: {0, 1}}  # ties both bold; column b has one number only
    t.best = {1: "min"}
    assert t.best_rows() == {1: {2}}


def test_folder_names_are_safe_and_distinct():
    taken: set[str] = set()
    names = [folder_name(x, taken) for x in ("a b/c", "a b/c", "compare", "..", "ok-1.x")]
    assert names == ["a_b_c", "a_b_c-2", "compare-2", "run", "ok-1.x"]


def test_run_without_evaluation_gets_its_curves_and_says_what_was_skipped(store, tmp_path):
    out = tmp_path / "out"
    res = invoke("report", "20250104", "--runs-dir", str(store), "--out", str(out), *DPI)
    assert res.exit_code == 0, res.output
    assert "skipped results, confusion, per-class and threshold figures and tables" in res.output
    assert "the run failed before it was evaluated" in res.output
    folder = out / "20250104-090000-demo"
    assert {p.name for p in folder.iterdir()} == {
        f"{n}.{e}" for n in ("loss", "accuracy", "lr") for e in ("png", "pdf")
    }
    assert "skipped results" in (out / "index.html").read_text()


def test_damaged_evaluation_files_are_skipped_with_the_reason(tmp_path):
    root = tmp_path / "runs"
    run = write_run(root, "20250101-090000-demo", num_classes=10)
    (run / "eval" / "predictions.npz").write_bytes(b"PK\x03\x04 not a zip")
    (run / "eval" / "per_class.csv").write_text("split,class,support\ntest,a,x\n")
    (run / runs.METRICS).write_text('{"kind": "epoch", "epoch": "x"}\nnot json\n')
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["report", str(run), "--out", str(out), *DPI])
    assert res.exit_code == 0, res.output
    assert "skipped learning curves: metrics.jsonl holds no step or epoch rows" in res.output
    assert "skipped predictions: eval/predictions.npz: cannot read" in res.output
    assert "skipped confusion: no predictions for test" in res.output
    assert "skipped per_class: no per-class figures for test" in res.output
    assert (out / run.name / "summary.tex").is_file()  # report.json is fine
    assert not list((out / run.name).glob("*.png"))


def test_the_report_package_ships_in_the_wheel():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"slr_tui.report",' in pyproject


def test_bad_input_is_one_line_and_exit_2(store, tmp_path):
    out = str(tmp_path / "out")
    for args, text in [
        (["nope"], "no run 'nope'"),
        ([MULTI, "--split", "train"], "--split must be test or val"),
        ([MULTI, "--format", "svg"], "--format takes png, pdf"),
        ([MULTI, "--eval", "other"], "has no eval-other/"),
    ]:
        res = CliRunner().invoke(app, ["report", *args, "--runs-dir", str(store), "--out", out])
        assert res.exit_code == 2, (args, res.output)
        assert text in res.output and "Traceback" not in res.output
    assert not Path(out).exists() or not any(Path(out).rglob("*.png"))


def test_eval_name_split_and_format_options(store, tmp_path):
    run = store / MULTI
    evaluate.write_eval(
        run / "eval-other", {"val": predictions(10, 30, 9)}, SPECIAL, evaluate.default_thresholds()
    )
    out = tmp_path / "out"
    res = invoke(
        "report", MULTI, "--runs-dir", str(store), "--out", str(out), "--eval", "other",
        "--format", "pdf", *DPI,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    folder = out / MULTI
    assert not list(folder.glob("*.png")) and (folder / "confusion.pdf").is_file()
    html = (out / "index.html").read_text()
    assert "the val split (eval-other/)" in html  # only val there: the default falls back
    assert html.count("data:image/png;base64,") == 5  # still shown, drawn for the page
    csv = (folder / "per_class.csv").read_text().splitlines()
    assert sum(int(r.split(",")[1]) for r in csv[1:] if r.split(",")[1]) == 30
    res = invoke(
        "report",
        MULTI,
        "--runs-dir",
        str(store),
        "--out",
        str(out),
        "--split",
        "val",
        "--eval",
        "other",
        *DPI,
    )
    assert res.exit_code == 0


def test_translation_run_plots_what_it_has(tmp_path):
    root = tmp_path / "runs"
    run = write_run(root, "20250120-090000-translation-demo", with_eval=False)

    def bleu(r):
        e = r["epoch"]
        return {**r, "val_bleu4": 2.0 * e, "val_chrf": 10.0 + e, "val_wer": 1.0 - 0.05 * e}

    _rewrite_epochs(run, bleu)
    figs = {"bleu4": 21.5, "chrf": 40.2, "wer": 0.61, "nll": 2.1, "num_samples": 12}
    runs.atomic_write_json(
        run / "eval" / "report.json",
        {
            "task": "translation",
            "val": figs,
            "test": {**figs, "bleu4": 19.0},
            "beam": {"test": {**figs, "bleu4": 23.0}},
        },
    )
    out = tmp_path / "out"
    res = invoke("report", str(run), "--out", str(out), *DPI)
    assert res.exit_code == 0, res.output
    folder = out / run.name
    assert {p.stem for p in folder.glob("*.png")} == {"loss", "bleu", "wer", "lr"}
    assert "a translation run has no classes" in res.output
    summary = (folder / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("split,BLEU-4,chrF,WER")
    assert [r.split(",")[0] for r in summary[1:]] == ["val greedy", "test greedy", "test beam"]
    assert "\\textbf{23.00}" in (folder / "summary.tex").read_text()  # best BLEU-4: beam


# --------------------------------------------------------------------------- the block

# 6 classes; off-diagonal counts: (0,1)=5, (2,3)=4, (1,0)=3, (4,5)=2, (3,2)=1, (5,4)=1
CM = np.array(
    [
        [10, 5, 0, 0, 0, 0],
        [3, 10, 0, 0, 0, 0],
        [0, 0, 10, 4, 0, 0],
        [0, 0, 1, 10, 0, 0],
        [0, 0, 0, 0, 10, 2],
        [0, 0, 0, 0, 1, 10],
    ]
)


def test_most_confused_block_of_a_fixed_matrix():
    assert most_confused_classes(CM, 10) == [0, 1, 2, 3, 4, 5]  # all fit
    assert most_confused_classes(CM, 2) == [0, 1]  # (0,1)=5
    assert most_confused_classes(CM, 3) == [0, 1, 2]  # then (2,3)=4 adds 2, block full
    assert most_confused_classes(CM, 4) == [0, 1, 2, 3]
    assert most_confused_classes(CM, 5) == [0, 1, 2, 3, 4]  # (1,0) adds nothing, (4,5)
    assert block_mass(CM, [0, 1, 2, 3]) == (13, 16)
    # no mistakes left to follow: the classes with the most mistakes fill the block
    diag = np.diag([5, 5, 5, 5])
    diag[3, 1] = 2
    assert most_confused_classes(diag, 3) == [0, 1, 3]  # 1 and 3, then the lowest index
    np.testing.assert_allclose(row_normalised(CM)[0], [10 / 15, 5 / 15, 0, 0, 0, 0])


def test_confusion_figure_of_many_classes_shows_the_block_and_says_so():
    c = 120
    cm = np.eye(c, dtype=np.int64) * 5
    cm[7, 90] = 4
    cm[90, 7] = 1
    fig = F.confusion_figure(cm, [f"g{i}" for i in range(c)], "test")
    ax = fig.axes[0]
    assert "the 30 most confused of 120 classes" in ax.get_title()
    assert "5 of 5 mistakes" in ax.get_title()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 30 and "g7" in labels and "g90" in labels
    assert labels == sorted(labels, key=lambda s: int(s[1:]))  # class order
