"""Synthetic inputs of the figure tests: clustered embeddings, scores, SEI frames."""

from __future__ import annotations

import numpy as np
import pandas as pd


def clusters(n: int, d: int, n_classes: int, seed: int, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.normal(size=(n_classes, d)) * 5
    return centres[y] + spread * rng.normal(size=(n, d)), y


def score_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    s_in = rng.normal(2.0, 1.0, 400)
    correct = rng.random(400) > 0.15
    s_in[~correct] -= 1.0
    s_out = rng.normal(0.0, 1.0, 250)
    return s_in, correct, s_out


SETTINGS = [(1, "none"), (4, "avg"), (4, "max"), (4, "w-avg"), (8, "avg"), (8, "max"), (8, "w-avg")]


def sei_frame(seed: int = 0, oods=("cifar100", "svhn"), methods=("mcl",)) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for method in methods:
        for variant in ("official", "paper"):
            for ways, agg in SETTINGS[::-1]:  # deliberately out of order
                acc = rng.uniform(0.9, 0.97)
                for ood in oods:
                    rows.append(
                        dict(
                            method=method,
                            detector="sei",
                            ways=ways,
                            aggregation=agg,
                            variant=variant,
                            accuracy=acc,
                            ood=ood,
                            auroc=rng.uniform(0.85, 0.95),
                            aupr_in=rng.random(),
                            aupr_out=rng.random(),
                            fpr95=rng.random(),
                        )
                    )
    return pd.DataFrame(rows)
