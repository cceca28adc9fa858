"""The one Markdown table helper, and the reports that use it."""

import pytest

from arner.core import corpus
from arner.core.stats import markdown, stats
from arner.core.tables import table

from conftest import ANNOTATIONS


def test_table_lines_and_alignment():
    assert table(["a", "b"], [(1, "x"), (2, "y")], "lr") == ["| a | b |", "|---|---:|", "| 1 | x |", "| 2 | y |"]


@pytest.mark.parametrize(("rows", "align"), [([(1,)], ""), ([(1, 2)], "lrx"), ([(1, 2)], "q")])
def test_a_ragged_row_or_bad_alignment_is_an_error(rows, align):
    with pytest.raises(ValueError):
        table(["a", "b"], rows, align)


def test_stats_table_has_as_many_separator_cells_as_header_cells():
    header, separator, *rows = markdown(stats(corpus.load(ANNOTATIONS))).splitlines()
    assert header.count("|") == separator.count("|") == rows[0].count("|")
    assert rows[-1].startswith("| **total** | 2111 |")
