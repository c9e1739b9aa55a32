"""The tiny real reproduce run the report tests share: its sizes and how to read it."""

from __future__ import annotations

import pandas as pd

# the tiny ce model has 64-d features: its class covariances need > 64 images per class
TRAIN_SUBSET = 1000
TEST_SUBSET = 100
N_BOOT = 200
TOL = 1e-9


def read_csv(folder, name) -> pd.DataFrame:
    """``folder/name.csv`` as the report wrote it."""
    return pd.read_csv(folder / f"{name}.csv", keep_default_na=True)
