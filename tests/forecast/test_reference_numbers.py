"""Behaviour unchanged across the restructuring: the numbers of the pre-split code, bit for bit.

``data/reference_numbers.json`` was written by ``reference_cases.py`` on commit 4c24697
(before forecast/coordinate.py was split into a subpackage): forecasts of the shipped
forecaster on fixed RNG-free inputs, and the loss history and a forecast of short seeded
fits of the dense and coordinate variants.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference_cases import FIT_CASES, fit_numbers, shipped_numbers

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_numbers.json").read_text())


def test_shipped_forecaster_forecasts_the_recorded_numbers():
    got = shipped_numbers()
    assert sorted(got) == sorted(REFERENCE["shipped"])
    for key, values in REFERENCE["shipped"].items():
        assert got[key] == values, key  # exact float equality, every coordinate


@pytest.mark.parametrize("name", sorted(FIT_CASES))
def test_seeded_fit_reproduces_the_recorded_numbers(name):
    got = fit_numbers(name)
    assert got["history"] == REFERENCE["fits"][name]["history"]
    assert got["forecast"] == REFERENCE["fits"][name]["forecast"]
