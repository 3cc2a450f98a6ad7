"""Class order and seeded, stratified splits by group, shared by the tabular sources.

A *group* is what must stay on one side of a split: a recording (``sequences_csv``), a
subject or session (``features`` with a ``group`` column), or a single sample. Each group
carries one *stratum* (its label, or its most frequent label), and every stratum is split
on its own with a generator seeded by ``(seed, stratum index)``, so the same files and seed
always give the same split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from engine.errors import DataError

SPLITS = ("train", "val", "test")

# Binary labels that name the "positive" (error, event) class; it gets class index 1.
POSITIVE_WORDS = frozenset(
    "1 1.0 true yes y positive pos error errors err incorrect wrong mistake fail failure "
    "failed abnormal anomaly anomalous fault faulty defect defective bad event".split()
)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def natural_sorted(values: Iterable[str]) -> list[str]:
    """Sorted label names: numerically when every name is a number ("2" before "10")."""
    names = sorted(set(values))
    numbers = [_number(n) for n in names]
    if names and all(v is not None for v in numbers):
        return [n for _, n in sorted(zip(numbers, names, strict=True))]
    return names


# YAML reads yes/no/on/off as booleans; a boolean positive_label matches any of them.
_BOOL_NAMES = {True: ("true", "yes", "y", "on", "1"), False: ("false", "no", "n", "off", "0")}


def class_order(
    labels: Iterable[str], positive_label: str | bool | int | None = None, *, where: str = "data"
) -> list[str]:
    """Class names in index order: sorted, except that with exactly two classes the positive
    one (``positive_label``, else a 1/true/error-like name) is index 1."""
    names = natural_sorted(labels)
    if len(names) != 2:
        return names
    if positive_label is not None:
        if isinstance(positive_label, bool):
            wanted, accepted = str(positive_label).lower(), _BOOL_NAMES[positive_label]
        else:
            wanted = str(positive_label)
            accepted = (wanted.strip().lower(),)
        match = [n for n in names if n == wanted] or [
            n for n in names if n.strip().lower() in accepted
        ]
        if len(match) != 1:
            raise DataError(
                f"data.positive_label '{wanted}' is not a label in {where} "
                f"(labels: {', '.join(names)}); set it to one of them"
            )
        return [n for n in names if n != match[0]] + match
    flags = [n.strip().lower() in POSITIVE_WORDS for n in names]
    return names[::-1] if flags == [True, False] else names


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if val_fraction + test_fraction >= 1:
        raise DataError(
            f"data.split_val_fraction + data.split_test_fraction is {val_fraction + test_fraction:g}; "
            "it must be below 1 so training keeps some data"
        )


def _assign(
    members: list[str],
    val_fraction: float,
    test_fraction: float,
    rng: np.random.Generator,
    at_least_one: bool,
) -> dict[str, str]:
    n = len(members)
    n_val = int(round(n * val_fraction))
    n_test = int(round(n * test_fraction))
    if at_least_one:
        n_val = max(n_val, 1 if val_fraction > 0 else 0)
        n_test = max(n_test, 1 if test_fraction > 0 else 0)
    while n - n_val - n_test < 1 and n_val + n_test > 0:
        if n_val > n_test:
            n_val -= 1
        else:
            n_test -= 1
    names = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
    order = rng.permutation(n)
    return {members[j]: names[i] for i, j in enumerate(order)}


def split_groups(
    strata: Mapping[str, str],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strict: bool,
    what: str,
    where: str,
    hint: str,
) -> dict[str, str]:
    """``{group: split}`` for ``{group: stratum}``, stratified by stratum with a seed.

    ``strict``: a stratum with fewer groups than the splits need is a DataError (a class
    too small to stratify). Otherwise such strata are pooled and split together, which is
    "stratified where possible". ``what`` names the groups ("recordings"), ``where`` the
    data, ``hint`` the way to fix the splits by hand."""
    check_fractions(val_fraction, test_fraction)
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    by_stratum: dict[str, list[str]] = {}
    for group in sorted(strata):
        by_stratum.setdefault(strata[group], []).append(group)
    out: dict[str, str] = {}
    pool: list[str] = []
    for k, label in enumerate(natural_sorted(by_stratum)):
        members = by_stratum[label]
        if len(members) < needed:
            if strict:
                raise DataError(
                    f"class '{label}' has only {len(members)} {what} in {where}; a stratified "
                    f"split needs at least {needed}: add {what}, set data.split_test_fraction: 0, "
                    f"or {hint}"
                )
            pool += members
            continue
        rng = np.random.default_rng([seed, 17, k])
        out.update(_assign(members, val_fraction, test_fraction, rng, True))
    if pool:
        rng = np.random.default_rng([seed, 17, len(by_stratum)])
        out.update(_assign(sorted(pool), val_fraction, test_fraction, rng, len(pool) >= needed))
    if "val" not in out.values():
        raise DataError(
            f"{where}: {len(out)} {what} are too few for a validation split; add {what} or {hint}"
        )
    return out
