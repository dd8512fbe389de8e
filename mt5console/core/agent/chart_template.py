"""Chart templates (.tpl) that put one of the console's EAs on a chart, with its inputs.

The MT5ConsoleController EA applies them with ``ChartApplyTemplate``; a path that starts with a
backslash is taken relative to the terminal's ``MQL5`` folder, so a template written to
``<data>/MQL5/Files/MT5Console/<ea>.tpl`` is named ``\\Files\\MT5Console\\<ea>.tpl``. The file is written
as the terminal writes its own templates: UTF-16 LE with a BOM and CRLF line ends.

A template does not set the chart's symbol or period (ChartOpen does); it carries the chart's main
window and the ``<expert>`` block. ``expertmode=5`` is what the terminal saves for an EA whose
"Allow Algo Trading" box is ticked; the terminal never grants more than the controller EA itself has.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from mt5console.core.agent.terminal_files import EA_FOLDER, TerminalFolders, check_ea_name

InputValue = str | int | float | bool
EXPERT_MODE_ALGO_TRADING: Final = 5
UTF16_LE_BOM: Final = b"\xff\xfe"

_INPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # an MQL5 identifier

_MAIN_WINDOW: Final = (
    "<window>",
    "height=100.000000",
    "objects=0",
    "<indicator>",
    "name=Main",
    "path=",
    "apply=1",
    "show_data=1",
    "scale_inherit=0",
    "scale_line=0",
    "scale_line_percent=50",
    "scale_line_value=0.000000",
    "scale_fix_min=0",
    "scale_fix_min_val=0.000000",
    "scale_fix_max=0",
    "scale_fix_max_val=0.000000",
    "expertmode=0",
    "fixed_height=-1",
    "</indicator>",
    "</window>",
)


class InvalidInputs(ValueError):
    """EA inputs a template cannot carry (a name that is not an identifier, a value on two lines)."""


def input_text(name: str, value: object) -> str:
    """An input's value as a template writes it; InvalidInputs for anything else."""
    if not isinstance(name, str) or not _INPUT_NAME.match(name):
        raise InvalidInputs(f"input name {name!r} is not an MQL5 identifier (letters, digits, _)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputs(f"input {name}: {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise InvalidInputs(f"input {name}: a value must be on one line")
        return value
    raise InvalidInputs(f"input {name}: {value!r} is not a string, number or true/false")


def chart_template(ea_name: str, inputs: Mapping[str, InputValue] | None = None) -> str:
    """The template's text for ``Experts\\MT5Console\\<ea_name>.ex5`` with ``inputs``."""
    name = check_ea_name(ea_name)
    values = [f"{key}={input_text(key, value)}" for key, value in (inputs or {}).items()]
    lines = [
        "<chart>",
        "<expert>",
        f"name={name}",
        f"path=Experts\\{EA_FOLDER}\\{name}.ex5",
        f"expertmode={EXPERT_MODE_ALGO_TRADING}",
        "<inputs>",
        *values,
        "</inputs>",
        "</expert>",
        *_MAIN_WINDOW,
        "</chart>",
    ]
    return "\r\n".join(lines) + "\r\n"


def template_file(folders: TerminalFolders, ea_name: str) -> Path:
    return folders.templates / f"{check_ea_name(ea_name)}.tpl"


def template_reference(ea_name: str) -> str:
    """The name ChartApplyTemplate is given: relative to MQL5 because it starts with a backslash."""
    return f"\\Files\\{EA_FOLDER}\\{check_ea_name(ea_name)}.tpl"


def write_template(folders: TerminalFolders, ea_name: str, inputs: Mapping[str, InputValue] | None) -> Path:
    """Write the EA's template (UTF-16 LE with a BOM) and return its path."""
    text = chart_template(ea_name, inputs)
    path = template_file(folders, ea_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(UTF16_LE_BOM + text.encode("utf-16-le"))
    return path


def read_template(path: Path) -> str:
    data = path.read_bytes()
    if not data.startswith(UTF16_LE_BOM):
        raise ValueError(f"{path} is not a UTF-16 LE template with a BOM")
    return data[len(UTF16_LE_BOM) :].decode("utf-16-le")
