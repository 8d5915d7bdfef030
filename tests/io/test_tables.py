"""The one Markdown table writer."""

from __future__ import annotations

from limacot.io.tables import markdown_table


def test_a_table_has_a_header_an_alignment_row_and_one_line_per_row():
    assert markdown_table(["task", "acc"], [["arc", 0.61], ["copa", None]], numeric=[False, True]) == [
        "| task | acc |", "|---|---:|", "| arc | 0.61 |", "| copa |  |"]
    assert markdown_table(["a", "b"], []) == ["| a | b |", "|---|---|"]


def test_a_cell_never_breaks_the_table():
    assert markdown_table(["name"], [["a|b\nc"]])[2] == "| a\\|b c |"
