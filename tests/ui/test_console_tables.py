"""The keyed table under the positions and strategies panes: diff updates, the pinned totals row, and
rows drawn at their columns' final widths."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult

from mt5console.ui.panes.table import Column, KeyedTable

COLUMNS = (Column("id", "ID"), Column("state", "State"), Column("pnl", "P&L", right=True))


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable(COLUMNS, pinned="total", id="table")


def row(*cells: str) -> list[Text]:
    """Cells as the panes make them: the last (an amount) right-aligned."""
    return [
        Text(cell, justify="right" if index == len(cells) - 1 else "left") for index, cell in enumerate(cells)
    ]


async def test_a_row_drawn_before_the_columns_are_measured_is_redrawn_at_full_width() -> None:
    """Textual measures columns when idle and caches drawn rows by content only: a row drawn in
    between kept the header's widths ("lo  runni") until it next changed."""
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        table.focus()
        await pilot.pause()
        table.sync({"long_strategy_id": row("long_strategy_id", "running", "1.00")})
        assert table.render_line(1).text.split()[:2] == ["lo", "runni"]  # drawn before measuring
        await table._on_idle(events.Idle())  # the measuring, with no other event in between
        assert table.render_line(1).text.split() == ["long_strategy_id", "running", "1.00"]


async def test_sync_adds_removes_and_rewrites_only_what_changed() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        await pilot.pause()
        table.sync(
            {"a": row("a", "running", "1.00"), "b": row("b", "paused", "2.00")}, row("total", "", "3.00")
        )
        assert [r.key.value for r in table.ordered_rows] == ["a", "b", "total"]
        table.move_cursor(row=1)
        assert table.selected_key() == "b"
        table.sync(
            {"a": row("a", "running", "1.50"), "b": row("b", "paused", "2.00")}, row("total", "", "3.50")
        )
        assert table.cell_updates == 2  # a's P&L and the total's, nothing else
        table.sync(
            {"b": row("b", "paused", "2.00"), "c": row("c", "running", "0.00")}, row("total", "", "2.00")
        )
        assert [r.key.value for r in table.ordered_rows] == ["b", "c", "total"]  # totals stay last
        assert table.selected_key() in ("b", "c")
        table.move_cursor(row=2)
        assert table.selected_key() is None  # the totals row is never "selected"
        table.sync({})
        assert table.row_count == 0 and table.selected_key() is None


async def test_a_changed_cell_is_drawn_anew_and_the_other_rows_are_not() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(KeyedTable)
        await pilot.pause()
        table.sync({key: row(key, "running", "1.00") for key in ("a", "b", "c")}, row("total", "", "3.00"))
        await pilot.pause()
        lines = [table.render_line(y).text for y in range(1, 5)]
        assert [line.split() for line in lines][:3] == [[k, "running", "1.00"] for k in "abc"]
        drawn = {key[0].value for key in list(table._cell_render_cache.keys())}
        assert {"a", "b", "c", "total"} <= drawn
        table.sync(
            {
                "a": row("a", "running", "1.00"),
                "b": row("b", "paused", "-2.50"),
                "c": row("c", "running", "1.00"),
            },
            row("total", "", "-0.50"),
        )
        drawn = {key[0].value for key in list(table._cell_render_cache.keys())}
        assert {"a", "c"} <= drawn and not {"b", "total"} & drawn  # only the changed rows are redrawn
        await pilot.pause()
        assert table.render_line(2).text.split() == ["b", "paused", "-2.50"]
        assert table.render_line(4).text.split() == ["total", "-0.50"]
        table.sync(
            {
                "a": row("a", "running", "1.00"),
                "b": row("b", "a much longer state", "-2.50"),
                "c": row("c", "running", "1.00"),
            },
            row("total", "", "-0.50"),
        )
        await pilot.pause()
        assert table.render_line(2).text.split()[:5] == [
            "b",
            "a",
            "much",
            "longer",
            "state",
        ]  # the column grew
        assert table.render_line(1).text.split() == ["a", "running", "1.00"]


async def test_a_wider_value_widens_its_column_for_every_row_and_the_header() -> None:
    app = TableApp()
    async with app.run_test(size=(70, 10)) as pilot:
        table = app.query_one(KeyedTable)
        await pilot.pause()
        table.sync({key: row(key, "running", "0.00") for key in ("a", "b")})
        await pilot.pause()
        assert [table.render_line(y).text.split() for y in range(1, 3)] == [
            ["a", "running", "0.00"],
            ["b", "running", "0.00"],
        ]
        table.sync({"a": row("a", "running", "-1,234.56"), "b": row("b", "running", "0.00")})
        await table._on_idle(events.Idle())  # the measuring, with no other event in between
        lines = [table.render_line(y).text.rstrip() for y in range(3)]
        assert len({len(line) for line in lines}) == 1, lines  # the P&L column ends in one place
        assert lines[1].endswith("-1,234.56") and lines[2].endswith("0.00") and lines[0].endswith("P&L")
