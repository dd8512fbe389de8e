"""The terminal's folders the console writes into, seen from this machine.

- ``<data>/MQL5/Experts/MT5Console/``: the EAs the console compiles and deploys (``<ea_name>.mq5``,
  ``.ex5``, MetaEditor's ``.log``);
- ``<data>/MQL5/Files/MT5Console/``: the chart templates the controller EA applies;
- ``<common>/Files/MT5Console/``: the command and answer files shared with the controller EA.

``terminal_info()`` reports Windows paths. Under Wine (``--broker mt5linux``) the console runs on the
Linux side, so ``C:\\users\\...`` is mapped through the Wine prefix (``$WINEPREFIX``, else ``~/.wine``):
``<prefix>/dosdevices/c:`` is Wine's own link to each drive, so every drive letter maps the way Wine
maps it. Paths that are not Windows paths (the simulator's) are used as they are.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Final

from mt5console.core.broker.models import TerminalState

EA_FOLDER: Final = "MT5Console"  # under MQL5/Experts, MQL5/Files and the common Files folder
METAEDITOR_EXE: Final = "metaeditor64.exe"
EA_NAME_MAX: Final = 63

_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
_FORBIDDEN_CHARACTERS: Final = frozenset('<>:"/\\|?*')
_RESERVED_NAMES: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{n}" for n in range(1, 10)} | {f"LPT{n}" for n in range(1, 10)}
)


class InvalidEaName(ValueError):
    """An EA name that could escape its folder or that Windows cannot use as a file name."""


def check_ea_name(name: object) -> str:
    """``name`` when it is a plain file name (no extension) for ``MQL5/Experts/MT5Console``."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidEaName(f"ea_name must be a non-empty string, not {name!r}")
    if "/" in name or "\\" in name:
        raise InvalidEaName(f"ea_name {name!r} must not contain path separators (/ or \\)")
    if ".." in name:
        raise InvalidEaName(f"ea_name {name!r} must not contain '..'")
    bad = sorted({ch for ch in name if ch in _FORBIDDEN_CHARACTERS or ord(ch) < 32})
    if bad:
        raise InvalidEaName(f"ea_name {name!r} contains characters a file name cannot have: {bad!r}")
    if name != name.strip() or name.endswith("."):
        raise InvalidEaName(f"ea_name {name!r} must not begin or end with a space or end with a dot")
    if name.lower().endswith((".mq5", ".ex5")):
        raise InvalidEaName(f"ea_name {name!r}: give the name without the .mq5/.ex5 extension")
    if name.split(".")[0].upper() in _RESERVED_NAMES:
        raise InvalidEaName(f"ea_name {name!r} is a name Windows reserves for a device")
    if len(name) > EA_NAME_MAX:
        raise InvalidEaName(f"ea_name {name!r} is longer than {EA_NAME_MAX} characters")
    return name


def is_windows_path(path: str) -> bool:
    return bool(_WINDOWS_PATH.match(path))


def wine_prefix() -> Path:
    """The Wine prefix the terminal runs in: ``$WINEPREFIX``, else ``~/.wine`` (Wine's default)."""
    configured = os.environ.get("WINEPREFIX")
    return Path(configured).expanduser() if configured else Path.home() / ".wine"


def local_path(terminal_path: str, *, prefix: Path | None = None) -> Path:
    """A path the terminal reported, as this machine reaches it (see the module docstring)."""
    if os.name == "nt" or not is_windows_path(terminal_path):
        return Path(terminal_path)
    windows = PureWindowsPath(terminal_path)
    drive = windows.drive[0].lower()
    return (prefix or wine_prefix()) / "dosdevices" / f"{drive}:" / Path(*windows.parts[1:])


def wine_path(path: Path, *, prefix: Path | None = None) -> str:
    """The Windows name under which a program running in Wine sees a local ``path``.

    Paths inside the prefix's ``drive_c`` become ``C:\\...`` (so that MetaEditor recognises its own
    MQL5 folder and resolves ``#include <...>`` from it), and so do those through its ``dosdevices``
    drive links, the form ``local_path`` gives (``absolute`` does not follow the link, and ``resolve``
    would also follow links the user made); anything else is reached through ``Z:``, Wine's mapping of
    ``/``.
    """
    absolute = path.absolute()
    dosdevices = ((prefix or wine_prefix()) / "dosdevices").absolute()
    with contextlib.suppress(ValueError):
        drive, *rest = absolute.relative_to(dosdevices).parts
        if len(drive) == 2 and drive.endswith(":"):
            return drive.upper() + "\\" + "\\".join(rest)
    drive_c = ((prefix or wine_prefix()) / "drive_c").absolute()
    try:
        inside = absolute.relative_to(drive_c)
    except ValueError:
        return "Z:" + str(absolute).replace("/", "\\")
    return "C:\\" + "\\".join(inside.parts)


@dataclass(frozen=True, slots=True)
class TerminalFolders:
    """The terminal's folders on this machine (see the module docstring)."""

    data: Path  # terminal_info().data_path: the folder holding MQL5/
    common: Path  # terminal_info().commondata_path: shared by every terminal of the user
    install: Path  # terminal_info().path: where terminal64.exe and metaeditor64.exe are
    reported_data_path: str  # data_path as the terminal wrote it: the controller matches commands on it

    @classmethod
    def of(cls, terminal: TerminalState, *, prefix: Path | None = None) -> TerminalFolders:
        return cls(
            data=local_path(terminal.data_path, prefix=prefix),
            common=local_path(terminal.commondata_path, prefix=prefix),
            install=local_path(terminal.path, prefix=prefix),
            reported_data_path=terminal.data_path,
        )

    @property
    def experts(self) -> Path:
        return self.data / "MQL5" / "Experts" / EA_FOLDER

    def source_file(self, ea_name: str) -> Path:
        return self.experts / f"{check_ea_name(ea_name)}.mq5"

    def ex5_file(self, ea_name: str) -> Path:
        return self.experts / f"{check_ea_name(ea_name)}.ex5"

    def compile_log(self, ea_name: str) -> Path:
        return self.experts / f"{check_ea_name(ea_name)}.log"

    @property
    def templates(self) -> Path:
        return self.data / "MQL5" / "Files" / EA_FOLDER

    @property
    def control(self) -> Path:
        """Where command and answer files meet the controller EA (FILE_COMMON, MT5Console\\)."""
        return self.common / "Files" / EA_FOLDER

    @property
    def metaeditor(self) -> Path:
        return self.install / METAEDITOR_EXE
