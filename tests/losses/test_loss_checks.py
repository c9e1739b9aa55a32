"""Tests for mclviz.losses._checks, through the public losses.

Bad input raises a ValueError that names the argument.
"""

from __future__ import annotations

import pytest
import torch
from loss_reference import GOOD_Y, GOOD_Z

from mclviz.losses import ccm, mcl, mcl_terms, mean_shifted, nt_xent, spa, supcon


@pytest.mark.parametrize("fn", [ccm, spa, mcl, mcl_terms])
@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"y": torch.tensor([0, 0, 1, 1])}, "y"),  # mismatched length
        ({"y": GOOD_Y.float()}, "y"),  # non-integer labels
        ({"y": torch.tensor([0, 1, 1, 1, 0, 0])}, "y"),  # views of one image disagree
        ({"y_aux": torch.tensor([0, 1, 0])}, "y_aux"),
        ({"y_aux": torch.zeros(6)}, "y_aux"),
        ({"z": GOOD_Z[:5]}, "z"),  # odd 2N
        ({"z": GOOD_Z[0]}, "z"),  # not 2-D
        ({"z": GOOD_Z.long()}, "z"),
        ({"tau": 0.0}, "tau"),
        ({"tau": -0.2}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 5.5}, "alpha"),  # > 1/tau = 5
        ({"beta": -1.0}, "beta"),
        ({"beta": 6.0}, "beta"),
        ({"variant": "authors"}, "variant"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(fn, kwargs, arg):
    call = {"z": GOOD_Z, "y": GOOD_Y, "y_aux": None, **kwargs}
    z, y, y_aux = call.pop("z"), call.pop("y"), call.pop("y_aux")
    with pytest.raises(ValueError, match=arg):
        fn(z, y, y_aux, **call)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_z_raises(bad):
    z = GOOD_Z.clone()
    z[2, 1] = bad
    for fn in (nt_xent, lambda t: supcon(t, GOOD_Y), lambda t: mcl(t, GOOD_Y)):
        with pytest.raises(ValueError, match="z contains NaN or inf"):
            fn(z)
    with pytest.raises(ValueError, match="z contains NaN or inf"):
        mean_shifted(z, torch.zeros(4))
