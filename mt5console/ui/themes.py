"""Theme files: TOML files loaded at start and registered with Textual.

Where they come from, in this order (a later file with the same ``name`` replaces an earlier one):
1. ``mt5console/themes/*.toml`` inside the package (shipped: mt5-dark, mt5-light, mt5-high-contrast;
   package data, so that ``pip install .`` installs them too);
2. ``<config dir>/themes/*.toml``: the user's own.

A file holds the fields of ``textual.theme.Theme``: ``name`` and ``primary`` (required), ``secondary``,
``accent``, ``warning``, ``error``, ``success``, ``foreground``, ``background``, ``surface``,
``panel``, ``boost`` (colours), ``dark`` (true/false), ``luminosity_spread``, ``text_alpha`` (0..1),
and a ``[variables]`` table of CSS variables, among them the console's own ``profit``, ``loss`` and
``simulated`` colours. A file that cannot be read is reported (file and field named) and skipped;
the others still load.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from textual.color import Color, ColorParseError
from textual.theme import Theme

import mt5console

# Inside the package, not next to it: a wheel carries only what is in the package (package-data).
SHIPPED_THEME_DIR: Final = Path(mt5console.__file__).resolve().parent / "themes"
DEFAULT_THEME: Final = "mt5-dark"
FALLBACK_THEME: Final = "textual-dark"  # Textual's own, used only when the shipped files are missing

COLOUR_FIELDS: Final = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
FRACTION_FIELDS: Final = ("luminosity_spread", "text_alpha")
# The console's own variables: always colours, defaulting to the theme's success/error/warning.
CONSOLE_VARIABLES: Final = {"profit": "success", "loss": "error", "simulated": "warning"}
KNOWN_FIELDS: Final = frozenset({"name", "dark", "variables", *COLOUR_FIELDS, *FRACTION_FIELDS})


class ThemeFileError(Exception):
    """A theme file that cannot be used; the message names the file and what is wrong."""


def user_theme_dir(config_dir: Path) -> Path:
    return config_dir / "themes"


def _colour(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f'{path}: {key}: must be a colour string such as "#4C9AFF", not {value!r}')
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeFileError(f"{path}: {key}: {value!r} is not a colour") from None
    return value


def theme_from_mapping(path: Path, data: Mapping[str, Any]) -> Theme:
    """A Theme from a parsed theme file; raises ThemeFileError naming the first bad field."""
    unknown = sorted(set(data) - KNOWN_FIELDS)
    if unknown:
        raise ThemeFileError(
            f"{path}: unknown field(s) {', '.join(unknown)} (expected {', '.join(sorted(KNOWN_FIELDS))})"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or name != name.strip() or " " in name:
        raise ThemeFileError(f'{path}: name: required, a word without spaces such as "my-theme"')
    if "primary" not in data:
        raise ThemeFileError(f"{path}: primary: required (the theme's main colour)")
    colours = {key: _colour(path, key, data[key]) for key in COLOUR_FIELDS if key in data}
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeFileError(f"{path}: dark: must be true or false, not {dark!r}")
    fractions: dict[str, float] = {}
    for key in FRACTION_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ThemeFileError(f"{path}: {key}: must be a number from 0 to 1, not {value!r}")
        fractions[key] = float(value)
    raw_variables = data.get("variables", {})
    if not isinstance(raw_variables, Mapping):
        raise ThemeFileError(f'{path}: variables: must be a table of name = "value"')
    variables: dict[str, str] = {}
    for key, value in raw_variables.items():
        if key in CONSOLE_VARIABLES:
            variables[key] = _colour(path, f"variables.{key}", value)
        elif isinstance(value, str):
            variables[key] = value
        else:
            raise ThemeFileError(f"{path}: variables.{key}: must be a string, not {value!r}")
    return Theme(
        name=name,
        primary=colours["primary"],
        secondary=colours.get("secondary"),
        accent=colours.get("accent"),
        warning=colours.get("warning"),
        error=colours.get("error"),
        success=colours.get("success"),
        foreground=colours.get("foreground"),
        background=colours.get("background"),
        surface=colours.get("surface"),
        panel=colours.get("panel"),
        boost=colours.get("boost"),
        dark=dark,
        luminosity_spread=fractions.get("luminosity_spread", 0.15),
        text_alpha=fractions.get("text_alpha", 0.95),
        variables=variables,
    )


def load_theme_file(path: Path) -> Theme:
    try:
        # utf-8-sig: Windows PowerShell 5 and Notepad write a BOM, which TOML would refuse at 1:1.
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise ThemeFileError(f"{path}: cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ThemeFileError(f"{path}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ThemeFileError(f"{path}: is not valid TOML: {error}") from None
    return theme_from_mapping(path, data)


@dataclass
class ThemeCatalog:
    """The themes found, in the order ``t`` cycles through them, and the files that were refused."""

    themes: dict[str, Theme] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.themes)

    def choose(self, requested: str | None) -> tuple[str, str | None]:
        """The theme to start with and, when the request cannot be met, why."""
        default = DEFAULT_THEME if DEFAULT_THEME in self.themes else FALLBACK_THEME
        if not requested or requested in self.themes:
            return (requested or default), None
        known = ", ".join(self.names) or "none"
        return default, f"theme {requested!r} not found (themes: {known}); using {default}"

    def next_after(self, current: str) -> str:
        names = self.names
        if not names:
            return current
        if current not in names:
            return names[0]
        return names[(names.index(current) + 1) % len(names)]


def load_themes(directories: Iterable[Path]) -> ThemeCatalog:
    catalog = ThemeCatalog()
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as error:
                catalog.problems.append(str(error))
                continue
            if theme.name in catalog.sources and catalog.sources[theme.name].parent != directory:
                catalog.notes.append(
                    f"theme {theme.name!r} from {path} replaces {catalog.sources[theme.name]}"
                )
            catalog.themes[theme.name] = theme
            catalog.sources[theme.name] = path
    if DEFAULT_THEME not in catalog.themes:
        catalog.problems.append(
            f"the default theme {DEFAULT_THEME!r} was not found in {SHIPPED_THEME_DIR}; "
            f"using Textual's {FALLBACK_THEME}"
        )
    return catalog


def console_variable_defaults(theme: Theme) -> dict[str, str]:
    """Values for profit/loss/simulated when a theme does not set them: its success/error/warning."""
    generated = theme.to_color_system().generate()
    return {name: generated[source] for name, source in CONSOLE_VARIABLES.items()}
