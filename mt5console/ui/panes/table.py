"""A DataTable keyed by a stable id and updated by diff (as dolphie's process list is).

``sync`` removes the rows that went away, adds the new ones and rewrites only the cells whose text or
style changed, so the cursor stays where the user put it and a quiet table costs nothing to redraw.

Textual 8.2's ``update_cell`` bumps a table-wide counter that every rendering cache is keyed by, so
one changed cell redraws every visible cell (about 45 ms for 40 rows of 11 columns: the whole budget
of a key press). ``_rewrite`` changes the cells and forgets only that row's cached drawing. It uses
DataTable's private caches (Textual is pinned to 8.2.x in pyproject.toml); the tests of this module
draw the rows and check what they show, so a change inside Textual shows up there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowDoesNotExist, RowKey

Signature = tuple[str, str, str | None]


def _signature(cell: Text) -> Signature:
    return (cell.plain, str(cell.style), cell.justify)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int | None = None  # None: as wide as the widest cell
    right: bool = False


class KeyedTable(DataTable[Text]):
    """Rows keyed by id; an optional pinned row (totals) always kept last. The first column (the
    key: a strategy's id, a ticket) stays in place when the rest scroll sideways (at 80 columns the
    right-hand ones are reached only so), or a row would no longer say whose it is."""

    def __init__(
        self, columns: Sequence[Column], *, pinned: str | None = None, id: str | None = None
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, fixed_columns=1, id=id)
        self._columns_spec = tuple(columns)
        self._pinned = pinned
        self._shown: dict[str, tuple[Signature, ...]] = {}
        self._given: dict[str, Sequence[Text]] = {}  # the cell lists last synced, to skip them cheaply
        self._widths: list[int] = []  # the columns' widths at the last measuring
        self.cell_updates = 0  # how many cells were rewritten (the tests check the diff is a diff)

    def on_mount(self) -> None:
        for column in self._columns_spec:
            label = Text(column.label, justify="right" if column.right else "left")
            self.add_column(label, key=column.key, width=column.width)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        # Textual caches drawn cells and rows by content, not by column width: a row drawn before
        # this (idle-time) measuring kept the old widths until it next changed (seen as "wa  runni"
        # for "watcher  running", and as a header out of line with its rows). When a width changed
        # since the last measuring, drop those drawings. (Widths are compared with the last
        # measuring's, not with this call's start: Textual may widen columns just before calling.)
        widths = [column.get_render_width(self) for column in self.columns.values()]
        if widths != self._widths:
            self._widths = widths
            self._clear_caches()

    def _rewrite(self, changes: Mapping[str, Sequence[tuple[str, Text]]]) -> None:
        """Put new values in cells and forget only the changed rows' cached drawings.

        One pass over each cache for all the rows a sync changed (a bar close changes many at once).
        """
        row_keys: set[RowKey] = set()
        indexes: set[int] = set()
        lines: set[int] = set()
        for key, cells in changes.items():
            row_key = RowKey(key)
            data = self._data[row_key]
            for column_key, value in cells:
                column = ColumnKey(column_key)
                data[column] = value
                if self.columns[column].auto_width and value.cell_len > self.columns[column].content_width:
                    self._updated_cells.add(CellKey(row_key, column))  # measured when idle
                    self._require_update_dimensions = True
            index = self.get_row_index(row_key)
            region = self._get_row_region(index)  # the row's lines, in the table's own coordinates
            row_keys.add(row_key)
            indexes.add(index)
            lines.update(range(region.y, region.bottom))
        # (LRUCache is not iterable itself: its keys() are.)
        cells_drawn = self._cell_render_cache.keys()
        for cell in [k for k in cells_drawn if k[0] in row_keys]:
            self._cell_render_cache.discard(cell)
        rows_drawn = self._row_render_cache.keys()
        for drawn in [k for k in rows_drawn if k[0] in row_keys]:
            self._row_render_cache.discard(drawn)
        renderables = self._row_renderable_cache.keys()
        for renderable in [k for k in renderables if k[1] in indexes]:
            self._row_renderable_cache.discard(renderable)
        lines_drawn = self._line_cache.keys()
        for line in [k for k in lines_drawn if k[0] in lines]:
            self._line_cache.discard(line)
        for index in indexes:
            self.refresh_row(index)

    def selected_key(self) -> str | None:
        """The key of the row under the cursor (never the pinned row)."""
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None
        return None if key == self._pinned else key

    def select(self, key: str) -> None:
        try:
            self.move_cursor(row=self.get_row_index(key))
        except RowDoesNotExist:
            return

    def forget_styles(self) -> None:
        """Make the next sync rewrite every cell (after a theme change the colours differ)."""
        self._shown = {key: tuple(("", "", None) for _ in shown) for key, shown in self._shown.items()}
        self._given.clear()

    def sync(self, rows: Mapping[str, Sequence[Text]], pinned: Sequence[Text] | None = None) -> None:
        wanted = dict(rows)
        if self._pinned is not None and pinned is not None and wanted:
            wanted[self._pinned] = pinned
        for key in [k for k in self._shown if k not in wanted]:
            self.remove_row(key)
            del self._shown[key]
        new = [k for k in wanted if k not in self._shown]
        if new and self._pinned in self._shown and self._pinned not in new:
            # New rows go below the others but above the totals: re-append the pinned row last.
            self.remove_row(self._pinned)
            del self._shown[self._pinned]
            new.append(self._pinned)
        keys = [column.key for column in self._columns_spec]
        rewrites: dict[str, list[tuple[str, Text]]] = {}
        for key, cells in wanted.items():
            shown = self._shown.get(key)
            if shown is None or cells is self._given.get(key):
                continue
            signatures = tuple(_signature(cell) for cell in cells)
            changes = [(keys[i], cells[i]) for i, signature in enumerate(signatures) if signature != shown[i]]
            if changes:
                rewrites[key] = changes
                self.cell_updates += len(changes)
                self._shown[key] = signatures
        if rewrites:
            self._rewrite(rewrites)
        for key in new:
            self.add_row(*wanted[key], key=key)
            self._shown[key] = tuple(_signature(cell) for cell in wanted[key])
        self._given = wanted
