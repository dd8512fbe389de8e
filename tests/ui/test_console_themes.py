"""Theme files: the shipped ones, a user's own, and bad files that must not stop the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from mt5console.ui.themes import (
    DEFAULT_THEME,
    SHIPPED_THEME_DIR,
    ThemeFileError,
    load_theme_file,
    load_themes,
    user_theme_dir,
)
from tests.ui.console_rig import make_console, started

pytestmark = pytest.mark.timeout(60)

GOOD = """
name = "ocean"
primary = "#1E88E5"
background = "#001F3F"
dark = true
[variables]
profit = "#7FDBFF"
"""


def test_the_shipped_themes_load_with_the_consoles_colours() -> None:
    catalog = load_themes([SHIPPED_THEME_DIR])
    assert catalog.problems == []
    assert {"mt5-dark", "mt5-light", "mt5-high-contrast"} <= set(catalog.names)
    assert catalog.choose(None) == (DEFAULT_THEME, None)
    assert catalog.themes["mt5-light"].dark is False
    for theme in catalog.themes.values():
        assert {"profit", "loss", "simulated"} <= set(theme.variables)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\nprimary = ", "is not valid TOML"),
        ("primary = '#fff'", "name: required"),
        ("name = 'two words'\nprimary = '#fff'", "name: required"),
        ("name = 'x'", "primary: required"),
        ("name = 'x'\nprimary = 'not-a-colour'", "primary: 'not-a-colour' is not a colour"),
        ("name = 'x'\nprimary = 12", "primary: must be a colour string"),
        ("name = 'x'\nprimary = '#fff'\ndark = 'yes'", "dark: must be true or false"),
        ("name = 'x'\nprimary = '#fff'\ntext_alpha = 3", "text_alpha: must be a number from 0 to 1"),
        ("name = 'x'\nprimary = '#fff'\nbackgrund = '#000'", "unknown field(s) backgrund"),
        ("name = 'x'\nprimary = '#fff'\n[variables]\nprofit = 'greenish'", "variables.profit: 'greenish'"),
        ("name = 'x'\nprimary = '#fff'\nvariables = 3", "variables: must be a table"),
    ],
)
def test_a_bad_theme_file_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ThemeFileError) as caught:
        load_theme_file(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_a_users_themes_join_the_shipped_ones_and_bad_files_are_skipped(tmp_path: Path) -> None:
    mine = user_theme_dir(tmp_path)
    mine.mkdir()
    (mine / "ocean.toml").write_text(GOOD)
    (mine / "broken.toml").write_text("name = 'broken'\nprimary = 'nope'")
    (mine / "mt5-light.toml").write_text("name = 'mt5-light'\nprimary = '#123456'\ndark = false")
    catalog = load_themes([SHIPPED_THEME_DIR, mine])
    assert "ocean" in catalog.names and "broken" not in catalog.names
    assert catalog.themes["mt5-light"].primary == "#123456"  # the user's replaces the shipped one
    assert catalog.sources["mt5-light"] == mine / "mt5-light.toml"
    assert any(
        "broken.toml" in problem and "'nope' is not a colour" in problem for problem in catalog.problems
    )
    assert any("replaces" in note for note in catalog.notes)
    assert catalog.choose("ocean") == ("ocean", None)
    name, why = catalog.choose("solarized")
    assert name == DEFAULT_THEME and why is not None and "'solarized' not found" in why


def test_without_the_shipped_folder_textuals_theme_is_the_fallback(tmp_path: Path) -> None:
    catalog = load_themes([tmp_path / "missing"])
    assert catalog.choose(None)[0] == "textual-dark"
    assert any("default theme 'mt5-dark' was not found" in problem for problem in catalog.problems)


async def test_the_console_starts_with_a_users_theme_chosen_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    user_theme_dir(config).mkdir(parents=True)
    (user_theme_dir(config) / "ocean.toml").write_text(GOOD)
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=(), theme="ocean", config_dir=config)
    async with rig.app.run_test(size=(100, 30)) as pilot:
        await started(rig)
        await pilot.pause()
        assert rig.app.theme == "ocean"
        assert rig.app.theme_variables["profit"] == "#7FDBFF"
        assert rig.app.theme_variables["loss"] == rig.app.theme_variables["error"]  # defaults to error
        assert "ocean" in rig.app.catalog.names
        await rig.app.shutdown()


async def test_a_bad_theme_file_gives_a_clear_message_and_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    user_theme_dir(config).mkdir(parents=True)
    bad = user_theme_dir(config) / "broken.toml"
    bad.write_text("name = 'broken'\nprimary = '#ff00zz'")
    rig = make_console(tmp_path, monkeypatch, strategies=[], manual=(), theme="broken", config_dir=config)
    async with rig.app.run_test(size=(100, 30), notifications=True) as pilot:
        await started(rig)
        await pilot.pause()
        assert rig.app.theme == DEFAULT_THEME
        lines = rig.app.main.log_pane.shown()
        assert any("WARNING" in line and str(bad) in line and "primary" in line for line in lines)
        assert any("theme 'broken' not found" in line and "using mt5-dark" in line for line in lines)
        assert any(n.severity == "warning" and str(bad) in n.message for n in rig.app._notifications)
        await rig.app.shutdown()
