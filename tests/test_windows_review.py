"""Windows defects from the review, each shown here on Linux by imitating the Windows condition.

- MetaEditor's command line: on Windows Popen turns an argument list into one command line with
  ``subprocess.list2cmdline`` (``"/compile:C:\\John Doe\\Grid.mq5"``) and passes a string as is; the
  stand-in MetaEditor below reads that raw line as MetaEditor does (``/compile:"<path>"`` or an
  unquoted ``/compile:<path>``) and, like it, exits without compiling on anything else.
- Text-mode writes on Windows turn each ``"\\n"`` into ``"\\r\\n"`` unless ``newline`` is given.
- PowerShell 5 writes theme files with a UTF-8 BOM.
- ``pip install .`` installs only what is in the package; ``py -m mt5console`` needs ``__main__``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath
from typing import IO, Any

import pytest

import mt5console
from mt5console.core.agent.metaeditor import CompileError, Compiler, windows_command_line
from mt5console.core.agent.terminal_files import TerminalFolders
from mt5console.ui.themes import SHIPPED_THEME_DIR, load_theme_file, load_themes
from tests.agent.test_metaeditor import GOOD_SOURCE, sim_folders, write_standin_metaeditor

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_THEMES = {"mt5-dark", "mt5-light", "mt5-high-contrast"}

# MetaEditor as it reads its raw command line: the path after "/compile:" and "/log:", quoted right
# after the colon or unquoted up to a space. Anything else ("/compile:... in quotes) it does not see.
RAW_LINE_METAEDITOR = textwrap.dedent(
    """\
    import os, re, sys, time
    line = sys.argv[1]
    def option(name):
        found = re.search(r'(?:^|\\s)/' + name + r':(?:"([^"]*)"|(\\S+))', line)
        return None if found is None else (found[1] or found[2])
    source, log = option("compile"), option("log")
    if source is None or log is None:
        sys.exit(1)  # as reported of MetaEditor: it exits without compiling and writes no log
    text = open(source, encoding="utf-8-sig").read()
    with open(os.path.join(os.path.dirname(log), "standin.pid"), "w") as f:
        f.write(str(os.getpid()))
    if "standin: hang" in text:
        time.sleep(600)
    with open(source[:-4] + ".ex5", "wb") as f:
        f.write(b"EX5")
    body = "Result: 0 errors, 0 warnings, 12 msec elapsed, cpu='X64 Regular'\\r\\n"
    with open(log, "wb") as f:
        f.write(b"\\xff\\xfe" + body.encode("utf-16-le"))
    """
)


class WindowsCommandLines:
    """Imitates Windows' Popen for every process started while installed (asyncio's too)."""

    def __init__(self, standin: Path) -> None:
        self.standin = standin
        self.lines: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_popen = subprocess.Popen
        recorder = self

        class WindowsLikePopen(real_popen):  # type: ignore[misc,valid-type]
            def __init__(self, args: str | Sequence[str], *rest: Any, **options: Any) -> None:
                # Windows: a string is the command line as is; a list is joined by list2cmdline.
                line = args if isinstance(args, str) else subprocess.list2cmdline(args)
                recorder.lines.append(line)
                super().__init__([sys.executable, str(recorder.standin), line], *rest, **options)

        monkeypatch.setattr(subprocess, "Popen", WindowsLikePopen)


def folders_with_a_space(tmp_path: Path) -> TerminalFolders:
    root = tmp_path / "John Doe"
    folders = TerminalFolders(
        data=root / "Terminal",
        common=root / "Common",
        install=root / "MetaTrader 5",
        reported_data_path=str(root / "Terminal"),
    )
    folders.install.mkdir(parents=True)
    folders.metaeditor.write_bytes(b"MZ")  # present, as the compile job checks; never run itself
    return folders


@pytest.fixture
def windows_popen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WindowsCommandLines:
    standin = tmp_path / "raw_line_metaeditor.py"
    standin.write_text(RAW_LINE_METAEDITOR, encoding="utf-8")
    recorder = WindowsCommandLines(standin)
    recorder.install(monkeypatch)
    return recorder


def test_the_windows_command_line_quotes_each_path_after_its_colon() -> None:
    data = PureWindowsPath(
        r"C:\Users\John Doe\AppData\Roaming\MetaQuotes\Terminal\ABC\MQL5\Experts\MT5Console"
    )
    line = windows_command_line(
        PureWindowsPath(r"C:\Program Files\MetaTrader 5\metaeditor64.exe"),
        data / "Grid.mq5",
        data / "Grid.log",
    )
    assert line == (
        r'"C:\Program Files\MetaTrader 5\metaeditor64.exe" '
        rf'/compile:"{data}\Grid.mq5" /log:"{data}\Grid.log"'
    )
    with pytest.raises(CompileError, match=r'the source path .* holds a double quote \("\)'):
        windows_command_line(PureWindowsPath(r"C:\me.exe"), PureWindowsPath('C:\\a"b.mq5'), data / "x.log")


async def test_on_windows_a_path_with_a_space_compiles(
    tmp_path: Path, windows_popen: WindowsCommandLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = folders_with_a_space(tmp_path)
    with monkeypatch.context() as windows:
        windows.setattr(os, "name", "nt")
        result = await Compiler(timeout=30).compile(folders, "Grid", source=GOOD_SOURCE)
    assert result.compiled and result.ex5_path == folders.ex5_file("Grid")
    source, log = folders.source_file("Grid"), folders.compile_log("Grid")
    assert windows_popen.lines == [f'"{folders.metaeditor}" /compile:"{source}" /log:"{log}"']


async def test_on_windows_a_metaeditor_that_overruns_is_killed_and_reaped(
    tmp_path: Path, windows_popen: WindowsCommandLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = folders_with_a_space(tmp_path)
    with monkeypatch.context() as windows:
        windows.setattr(os, "name", "nt")
        with pytest.raises(CompileError, match=r"did not finish within 1 s and was stopped"):
            await Compiler(timeout=1.0).compile(folders, "Slow", source=GOOD_SOURCE + "// standin: hang\n")
    pid = int((folders.experts / "standin.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_on_windows_a_cancelled_compile_kills_metaeditor(
    tmp_path: Path, windows_popen: WindowsCommandLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = folders_with_a_space(tmp_path)
    pid_file = folders.experts / "standin.pid"
    with monkeypatch.context() as windows:
        windows.setattr(os, "name", "nt")
        job = asyncio.create_task(
            Compiler(timeout=60).compile(folders, "Hang", source=GOOD_SOURCE + "// standin: hang\n")
        )
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.05)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # killed, and reaped by the thread that waited on it
        await asyncio.sleep(0.05)
    pytest.fail(f"the stand-in MetaEditor (pid {pid}) still runs after the compile was cancelled")


def imitate_windows_text_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text mode on Windows writes each "\\n" as "\\r\\n" when ``newline`` is not given."""
    real_open = Path.open

    def windows_open(
        self: Path,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> IO[Any]:
        if "b" not in mode and newline is None and any(flag in mode for flag in "wax+"):
            newline = "\r\n"
        return real_open(self, mode, buffering, encoding, errors, newline)

    monkeypatch.setattr(Path, "open", windows_open)


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
async def test_the_source_keeps_its_own_line_ends_on_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line_end: str
) -> None:
    folders = sim_folders(tmp_path)
    compiler = Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)), timeout=30)
    source = GOOD_SOURCE.replace("\n", line_end)  # an editor on Windows, or the platform, sends CRLF
    imitate_windows_text_writes(monkeypatch)
    result = await compiler.compile(folders, "Grid", source=source)
    assert result.compiled
    written = folders.source_file("Grid").read_bytes()
    assert b"\r\r\n" not in written
    assert written == b"\xef\xbb\xbf" + source.encode("utf-8")


def test_a_theme_file_with_a_bom_and_crlf_loads(tmp_path: Path) -> None:
    # As PowerShell 5's Set-Content -Encoding UTF8 / Out-File writes it.
    text = 'name = "mine"\r\nprimary = "#123456"\r\n[variables]\r\nprofit = "#00FF00"\r\n'
    (tmp_path / "mine.toml").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    theme = load_theme_file(tmp_path / "mine.toml")
    assert (theme.name, theme.primary, theme.variables["profit"]) == ("mine", "#123456", "#00FF00")
    catalog = load_themes([SHIPPED_THEME_DIR, tmp_path])
    assert "mine" in catalog.names and not any("mine.toml" in p for p in catalog.problems)


def test_the_shipped_themes_live_inside_the_package() -> None:
    package = Path(mt5console.__file__).resolve().parent
    assert package / "themes" == SHIPPED_THEME_DIR
    catalog = load_themes([SHIPPED_THEME_DIR])
    assert catalog.problems == [] and set(catalog.names) >= SHIPPED_THEMES


def test_the_wheel_carries_the_themes_and_the_installed_package_finds_them(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "mt5console", source / "mt5console", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("mt5console-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "installed")
    assert {f"mt5console/themes/{theme}.toml" for theme in SHIPPED_THEMES} <= names
    assert "mt5console/mql5/MT5ConsoleController.mq5" in names
    # The unpacked wheel, first on the path, as an installed copy: its own themes are found.
    probe = (
        "import mt5console; from mt5console.ui.themes import SHIPPED_THEME_DIR, load_themes; "
        "c = load_themes([SHIPPED_THEME_DIR]); print(mt5console.__file__); print(sorted(c.names), c.problems)"
    )
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "installed")}
    ran = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=environment,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    where, found = ran.stdout.splitlines()
    assert Path(where).is_relative_to(tmp_path / "installed")
    assert found == f"{sorted(SHIPPED_THEMES)} []"


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mt5console", *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_python_dash_m_mt5console_runs_the_cli_and_passes_on_its_exit_code(tmp_path: Path) -> None:
    valid = run_module("check", str(ROOT / "examples" / "strategies" / "ema_cross_eurusd_m1.json"))
    assert valid.returncode == 0, valid.stderr
    assert "valid" in valid.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"strategyName": 3}', encoding="utf-8")
    invalid = run_module("check", str(bad))
    assert invalid.returncode == 2
    assert "invalid strategy" in invalid.stderr and "strategyId: is required" in invalid.stderr


def test_the_readmes_controller_setup_command_copies_the_shipped_source(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = [line.strip().strip("`") for line in readme.splitlines() if "CONTROLLER_SOURCE" in line]
    program, code = command.split(" -c ", 1)
    assert program == "python" and code.startswith('"') and code.endswith('"')
    ran = subprocess.run(
        [sys.executable, "-c", code[1:-1]], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    shipped = ROOT / "mt5console" / "mql5" / "MT5ConsoleController.mq5"
    assert (tmp_path / "MT5ConsoleController.mq5").read_bytes() == shipped.read_bytes()
