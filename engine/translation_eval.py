"""The evaluation pass of a translation model (``SLRModel.task == "translation"``).

Classification's pass (:mod:`engine.inference`) scores class probabilities; a translation
model writes sentences instead, so its figures are different: the teacher-forced token
loss and token accuracy (what training minimises), then, from the generated sentences
(greedy, or beam search with ``training.num_beams``), corpus BLEU-1..4 and chrF through
sacrebleu (0..100, as sacrebleu reports them, default ``13a`` tokenisation) and the word
error rate through jiwer (0..1, lower is better). A handful of examples (reference vs
hypothesis) go into metrics.jsonl each epoch so a viewer can show what the model writes.

Across processes every rank decodes its shard; the sentences are gathered by sample index
and de-duplicated (shards may repeat a sample), the token sums are summed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from engine.inference import to_device

#: the epoch row's figure for each key of :func:`evaluate`'s summary
EPOCH_FIGURES = (
    ("val_loss", "nll"),
    ("val_token_acc", "token_accuracy"),
    ("val_bleu1", "bleu1"),
    ("val_bleu2", "bleu2"),
    ("val_bleu3", "bleu3"),
    ("val_bleu4", "bleu4"),
    ("val_chrf", "chrf"),
    ("val_wer", "wer"),
)
#: the headline figures run.json keeps per split (``results``)
RESULT_KEYS = ("bleu4", "chrf", "wer", "nll")


def text_metrics(references: list[str], hypotheses: list[str]) -> dict[str, float | None]:
    """Corpus BLEU-1..4 and chrF (sacrebleu, 0..100) and WER (jiwer, 0..1)."""
    from sacrebleu.metrics import BLEU, CHRF

    out: dict[str, float | None] = {}
    if not references:
        return {
            "bleu1": None,
            "bleu2": None,
            "bleu3": None,
            "bleu4": None,
            "chrf": None,
            "wer": None,
        }
    for n in (1, 2, 3, 4):
        out[f"bleu{n}"] = float(
            BLEU(max_ngram_order=n).corpus_score(hypotheses, [references]).score
        )
    out["chrf"] = float(CHRF().corpus_score(hypotheses, [references]).score)
    out["wer"] = word_error_rate(references, hypotheses)
    return out


def word_error_rate(references: list[str], hypotheses: list[str]) -> float | None:
    """jiwer's corpus WER; null when no reference has a word (WER is undefined then)."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.split()]
    if not pairs:
        return None
    refs, hyps = zip(*pairs, strict=True)
    return float(jiwer.wer(list(refs), list(hyps)))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    accelerator: Any,
    *,
    num_beams: int = 1,
    num_examples: int = 5,
    max_new_tokens: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(summary, rows) for one split: the summary's figures (``nll``, ``token_accuracy``,
    ``bleu1..4``, ``chrf``, ``wer``, ``num_samples``, ``num_beams``) and ``examples``
    (the first ``num_examples`` rows); rows are ``{id, reference, hypothesis}`` in
    dataset order."""
    model.eval()
    net = accelerator.unwrap_model(model)
    nll, tokens, correct = 0.0, 0, 0
    found: list[tuple[int, str]] = []
    for batch in loader:
        batch = to_device(batch, accelerator.device)
        with accelerator.autocast():
            out = model(batch)
            hyps = net.generate(
                batch,
                num_beams=num_beams,
                max_new_tokens=max_new_tokens,
                encoded=(out["memory"], out["memory_mask"]),
            )
        s, n, c = net.token_sums(out)
        nll, tokens, correct = nll + s, tokens + n, correct + c
        found += list(zip(batch["index"].tolist(), hyps, strict=True))
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        found = gather_object(found)
        t = torch.tensor([nll, tokens, correct], dtype=torch.float64, device=accelerator.device)
        nll, tokens, correct = accelerator.reduce(t, reduction="sum").tolist()
    by_index = dict(sorted(found))
    ds = loader.dataset
    if len(by_index) != len(ds):
        raise RuntimeError(f"evaluation gathered {len(by_index)} of {len(ds)} samples")
    rows = [
        {"id": ds.ids[i], "reference": ds.texts[i], "hypothesis": by_index[i]}
        for i in range(len(ds))
    ]
    summary: dict[str, Any] = {
        "num_samples": len(rows),
        "num_beams": int(num_beams),
        "nll": nll / tokens if tokens else None,
        "token_accuracy": correct / tokens if tokens else None,
        **text_metrics([r["reference"] for r in rows], [r["hypothesis"] for r in rows]),
    }
    summary["examples"] = rows[:num_examples]
    return summary, rows


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without its examples (the numbers a report or an eval row holds)."""
    return {k: v for k, v in summary.items() if k != "examples"}
