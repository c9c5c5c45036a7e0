"""The rater-vs-rater confusion plots: every count readable on its cell."""

from __future__ import annotations

import numpy as np

from hiwar.evaluation.human.plots import _pyplot, text_colours


def test_counts_on_dark_cells_are_white_and_on_light_cells_black() -> None:
    cmap = _pyplot().get_cmap("Blues")
    table = np.array([[9, 0, 1], [0, 8, 0], [2, 0, 9]])  # good agreement: the diagonal is the darkest
    colours = text_colours(table, cmap)
    assert [colours[i][i] for i in range(3)] == ["white", "white", "white"]
    assert colours[0][1] == colours[1][0] == colours[0][2] == "black"
    assert text_colours(np.zeros((2, 2), dtype=int), cmap) == [["black", "black"], ["black", "black"]]
