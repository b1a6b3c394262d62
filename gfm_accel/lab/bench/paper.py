"""The paper's published numbers, transcribed from its text, to print beside ours.

Every value is ``(mean, std)`` as printed in the paper (3 decimals; leading zeros
restored). Sources (``/work/shared/paper/gradient_flow_matching.txt``):

* :data:`TABLE1` - Table 1, test MSE on linreg, n = 4, m = 199, 5 seeds.
* :data:`TABLE2` - Table 2, CIFAR-10 CNN / Transformer: parameter MSE and f_source;
  ``None`` where the paper prints "-" (DLinear and WNN on Transformers, "omitted due to
  memory issues").
* :data:`TABLE3` - Table 3, GFM under Xavier initialization (n = 4).
* :data:`TABLE4` - Table 4, GFM with n = 0.
* :data:`TABLE6` - Table 6, best (beta, gamma, zeta) per optimizer.
* :data:`SENSITIVITY` - Tables 7, 8 and 9 (zeta = 1, 10, 100), keyed ``(beta, gamma, zeta)``.

Transcription notes (the text extraction of the paper is damaged in places):

* The captions of Tables 7 and 8 sit *below* their blocks (as Table 1's and 2's do), so
  the first block is zeta = 1 (Table 7), the second zeta = 10 (Table 8), and the last,
  captionless block is zeta = 100 (Table 9). This is confirmed by the last block's
  ``beta = gamma = 1`` row, which equals Table 1's GFM row (the default zeta = 100).
* Table 9 (zeta = 100) has no ``beta = gamma = 10`` row in the text: it is absent here.
* Row labels such as "10.0 0 0.1" and "1.0 1.0 0.1" are extraction artifacts; the blocks
  follow the regular (beta, gamma) order 0.1/0.1, 0.1/1, 0.1/10, 1/0.1, 1/1, 1/10, 10/0.1,
  10/1, 10/10 in each table, which is what we record.

Example:
    >>> TABLE1["gfm"]["adagrad"]
    (0.013, 0.002)
    >>> SENSITIVITY[(1.0, 1.0, 100.0)]["sgd"] == TABLE1["gfm"]["sgd"]
    True
"""

from __future__ import annotations

from ..optim import PAPER_OPTIMIZERS

__all__ = [
    "OPTIMIZERS",
    "PAPER_MODEL_NAMES",
    "TABLE1",
    "TABLE2",
    "TABLE3",
    "TABLE4",
    "TABLE6",
    "SENSITIVITY",
    "paper_cell",
]

#: Column order of the paper's linreg tables (the lab registry's paper optimizers).
OPTIMIZERS: tuple[str, ...] = PAPER_OPTIMIZERS

#: Our model key -> the paper's row label.
PAPER_MODEL_NAMES: dict[str, str] = {
    "introspection": "Introspection",
    "dlinear": "DLinear",
    "lfd2": "LFD2",
    "wnn": "WNN",
    "lstm": "LSTM",
    "transformer": "Transformer",
    "gfm": "GFM (ours)",
}

Cell = tuple[float, float]


def _row(*cells: Cell) -> dict[str, Cell]:
    return dict(zip(OPTIMIZERS, cells))


def _rows(text: str) -> list[dict[str, Cell]]:
    """Rows of ``mean std`` pairs, one row per line, in :data:`OPTIMIZERS` order (``#`` starts a comment)."""
    out = []
    for line in text.splitlines():
        nums = [float(v) for v in line.split("#")[0].split()]
        if nums:
            out.append(_row(*zip(nums[::2], nums[1::2])))
    return out


TABLE1: dict[str, dict[str, Cell]] = {
    "introspection": _row((0.230, 0.133), (0.276, 0.142), (0.271, 0.139), (0.118, 0.078), (0.134, 0.104)),
    "dlinear": _row((0.023, 0.008), (0.517, 0.186), (0.490, 0.176), (0.385, 0.139), (0.315, 0.091)),
    "lfd2": _row((2.427, 0.526), (2.682, 0.582), (2.653, 0.576), (2.201, 0.458), (2.125, 0.405)),
    "wnn": _row((0.811, 0.354), (0.935, 0.275), (0.910, 0.270), (0.539, 0.227), (0.460, 0.155)),
    "lstm": _row((1.601, 0.029), (1.591, 0.023), (1.572, 0.024), (1.567, 0.032), (1.525, 0.049)),
    "transformer": _row((0.020, 0.007), (0.020, 0.006), (0.019, 0.005), (0.020, 0.007), (0.016, 0.004)),
    "gfm": _row((0.021, 0.013), (0.020, 0.012), (0.016, 0.007), (0.019, 0.011), (0.013, 0.002)),
}

#: Table 2: model -> family ("cnn" | "transformer") -> {"mse": Cell, "f_source": Cell} or None.
TABLE2: dict[str, dict[str, dict[str, Cell] | None]] = {
    "introspection": {"cnn": {"mse": (0.421, 0.000), "f_source": (2.369, 0.003)},
                      "transformer": {"mse": (0.054, 0.000), "f_source": (2.225, 0.005)}},
    "dlinear": {"cnn": {"mse": (0.900, 0.123), "f_source": (309.361, 126.423)}, "transformer": None},
    "lfd2": {"cnn": {"mse": (0.421, 0.000), "f_source": (2.381, 0.007)},
             "transformer": {"mse": (0.054, 0.000), "f_source": (2.226, 0.002)}},
    "wnn": {"cnn": {"mse": (0.365, 0.000), "f_source": (3.605, 0.245)}, "transformer": None},
    "lstm": {"cnn": {"mse": (0.466, 0.004), "f_source": (2.604, 0.024)},
             "transformer": {"mse": (0.054, 0.000), "f_source": (2.266, 0.052)}},
    "transformer": {"cnn": {"mse": (0.543, 0.013), "f_source": (3.526, 0.387)},
                    "transformer": {"mse": (0.053, 0.000), "f_source": (2.228, 0.004)}},
    "gfm": {"cnn": {"mse": (0.485, 0.021), "f_source": (3.369, 0.416)},
            "transformer": {"mse": (0.043, 0.000), "f_source": (1.117, 0.001)}},
}

#: Table 3: init -> optimizer -> Cell (GFM, n = 4). The "normal" row is Table 1's GFM row.
TABLE3: dict[str, dict[str, Cell]] = {
    "xavier_normal": _row((0.020, 0.014), (0.017, 0.008), (0.017, 0.008), (0.016, 0.009), (0.013, 0.003)),
    "xavier_uniform": _row((0.021, 0.008), (0.026, 0.007), (0.026, 0.007), (0.019, 0.006), (0.017, 0.005)),
    "normal": TABLE1["gfm"],
}

#: Table 4: GFM with n = 0, optimizer -> Cell.
TABLE4: dict[str, Cell] = _row((0.023, 0.008), (0.025, 0.012), (0.025, 0.012), (0.025, 0.010), (0.025, 0.014))

#: Table 6: optimizer -> (best Cell, beta, gamma, zeta).
TABLE6: dict[str, tuple[Cell, float, float, float]] = {
    "sgd": ((0.015, 0.006), 0.0, 0.0, 10.0),
    "adam": ((0.014, 0.004), 0.0, 0.1, 1.0),
    "adamw": ((0.014, 0.005), 0.0, 1.0, 100.0),
    "rmsprop": ((0.015, 0.003), 0.1, 1.0, 100.0),
    "adagrad": ((0.013, 0.002), 0.1, 1.0, 100.0),
}

_BG = [(0.1, 0.1), (0.1, 1.0), (0.1, 10.0), (1.0, 0.1), (1.0, 1.0), (1.0, 10.0), (10.0, 0.1), (10.0, 1.0), (10.0, 10.0)]

_TABLE7 = _rows("""  # zeta = 1
    0.040 0.034  0.045 0.027  0.031 0.015  0.026 0.021  0.017 0.004
    0.033 0.007  0.039 0.016  0.035 0.010  0.025 0.006  0.022 0.007
    0.047 0.030  0.050 0.022  0.051 0.032  0.033 0.016  0.030 0.013
    0.041 0.023  0.051 0.026  0.050 0.023  0.031 0.021  0.023 0.012
    0.123 0.035  0.152 0.031  0.193 0.119  0.071 0.006  0.045 0.013
    0.144 0.033  0.199 0.025  0.161 0.044  0.074 0.020  0.046 0.013
    0.057 0.032  0.083 0.040  0.080 0.039  0.100 0.073  0.087 0.059
    0.131 0.038  0.210 0.048  0.206 0.041  0.097 0.061  0.073 0.035
    0.529 0.122  0.713 0.133  0.724 0.201  0.308 0.106  0.213 0.086
""")
_TABLE8 = _rows("""  # zeta = 10
    0.018 0.010  0.021 0.013  0.023 0.021  0.020 0.013  0.018 0.012
    0.017 0.005  0.020 0.009  0.018 0.004  0.017 0.004  0.014 0.004
    0.023 0.010  0.022 0.008  0.019 0.005  0.019 0.005  0.019 0.006
    0.028 0.020  0.029 0.016  0.039 0.043  0.024 0.021  0.026 0.028
    0.033 0.019  0.050 0.034  0.033 0.017  0.025 0.017  0.019 0.009
    0.035 0.008  0.038 0.017  0.034 0.008  0.025 0.006  0.021 0.008
    0.031 0.023  0.044 0.048  0.040 0.034  0.027 0.021  0.025 0.020
    0.051 0.036  0.048 0.015  0.052 0.031  0.032 0.026  0.021 0.010
    0.131 0.018  0.168 0.051  0.150 0.018  0.070 0.021  0.043 0.008
""")
_TABLE9 = _rows("""  # zeta = 100 (no beta = gamma = 10 row in the text)
    0.026 0.015  0.027 0.016  0.021 0.016  0.020 0.011  0.015 0.005
    0.017 0.004  0.021 0.011  0.015 0.006  0.015 0.003  0.013 0.002
    0.018 0.008  0.017 0.005  0.015 0.004  0.016 0.005  0.014 0.004
    0.019 0.008  0.021 0.011  0.014 0.003  0.017 0.005  0.018 0.010
    0.021 0.013  0.020 0.012  0.016 0.007  0.019 0.011  0.013 0.002
    0.018 0.008  0.018 0.005  0.020 0.007  0.017 0.004  0.014 0.003
    0.025 0.017  0.028 0.019  0.032 0.028  0.025 0.017  0.023 0.022
    0.029 0.024  0.034 0.027  0.027 0.013  0.029 0.030  0.019 0.012
""")

#: Tables 7-9: (beta, gamma, zeta) -> optimizer -> Cell.
SENSITIVITY: dict[tuple[float, float, float], dict[str, Cell]] = {}
for _zeta, _block in ((1.0, _TABLE7), (10.0, _TABLE8), (100.0, _TABLE9)):
    for (_beta, _gamma), _cells in zip(_BG, _block):
        SENSITIVITY[(_beta, _gamma, _zeta)] = _cells


def paper_cell(cell: Cell | None) -> str:
    """Format a paper cell the way the paper prints it: ``.021 (.013)``; ``-`` for None.

    Example:
        >>> paper_cell((0.021, 0.013)), paper_cell(None)
        ('.021 (.013)', '-')
    """
    if cell is None:
        return "-"
    from ._forecast_eval import fmt_cell

    return fmt_cell(*cell)
