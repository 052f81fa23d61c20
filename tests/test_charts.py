"""The dashboard's charts: axes count whole things."""

import pytest

from web import charts


@pytest.mark.parametrize("top", [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20_000])
def test_axis_ticks_are_whole_numbers(top):
    """Seen: an axis read "12.5" slots (ticks at quarters of 50)."""
    drawn = charts.chart(["a", "b"], bars=[top, top // 2])
    labels = [label for _, label in drawn.left_ticks]
    assert labels[0] == "0" and len(labels) >= 2
    assert all("." not in label for label in labels), labels
