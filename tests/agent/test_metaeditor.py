"""The compile job's machinery: MetaEditor's UTF-16 log, the stand-in MetaEditor, limits and timeouts."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from mt5console.core.agent.metaeditor import (
    CompileError,
    CompileMessage,
    Compiler,
    decode_compile_log,
    metaeditor_command,
    parse_compile_log,
)
from mt5console.core.agent.terminal_files import (
    InvalidEaName,
    TerminalFolders,
    check_ea_name,
    local_path,
    wine_path,
)

# A log in the exact form MetaEditor 5 writes with /log: (here as text; on disk UTF-16 LE with a
# BOM and CRLF): the banner, "information" lines for the file and its includes, one line per error
# and warning "<file>(<line>,<column>) : error|warning <code>: <message>", and the Result line.
DATA = r"C:\Users\trader\AppData\Roaming\MetaQuotes\Terminal\D0E8209F77C8CF37AD8BF550E51FF075\MQL5"
MULTI_ERROR_LOG = "\r\n".join(
    [
        "MetaEditor 5 build 4755 started (x64)",
        rf"{DATA}\Experts\MT5Console\Broken.mq5 : information: compiling 'Broken.mq5'",
        rf"{DATA}\Include\Trade\Trade.mqh : information: including 'Trade\Trade.mqh'",
        rf"{DATA}\Include\Trade\SymbolInfo.mqh : information: including 'Trade\SymbolInfo.mqh'",
        rf"{DATA}\Experts\MT5Console\Broken.mq5(14,11) : error 256: 'lots' - undeclared identifier",
        rf"{DATA}\Experts\MT5Console\Broken.mq5(14,25) : warning 43: possible loss of data due to type "
        "conversion from 'double' to 'int'",
        rf"{DATA}\Experts\MT5Console\Broken.mq5(21,5) : error 149: 'else' - unexpected token",
        rf"{DATA}\Experts\MT5Console\Broken.mq5(27,1) : error 145: '}}' - unexpected end of program",
        " : information: result 3 errors, 1 warnings",
        "Result: 3 errors, 1 warnings, 187 msec elapsed, cpu='X64 Regular'",
        "",
    ]
)

GOOD_SOURCE = textwrap.dedent(
    """\
    #property version "1.00"
    input double Lots = 0.10; // lot size — non-ASCII survives
    int OnInit() { return(INIT_SUCCEEDED); }
    void OnTick() {}
    """
)
BROKEN_SOURCE = GOOD_SOURCE + "void Broken() { lots = 1; }\n// standin: errors\n"
HANGING_SOURCE = GOOD_SOURCE + "// standin: hang\n"
SILENT_SOURCE = GOOD_SOURCE + "// standin: no log\n"

# The stand-in MetaEditor: parses /compile: and /log: as MetaEditor does and writes its log in the
# exact format (UTF-16 LE, BOM, CRLF). Markers in the source pick the behaviour.
STANDIN = textwrap.dedent(
    """\
    #!{python}
    import os, sys, time
    args = dict(a[1:].split(":", 1) for a in sys.argv[1:] if a.startswith("/"))
    source, log = args["compile"], args["log"]
    text = open(source, encoding="utf-8-sig").read()
    with open(os.path.join(os.path.dirname(log), "standin.pid"), "w") as f:
        f.write(str(os.getpid()))
    name = os.path.basename(source)
    windows = "C:\\\\MT5\\\\MQL5\\\\Experts\\\\MT5Console\\\\" + name
    if "standin: hang" in text:
        time.sleep(600)
    if "standin: no log" in text:
        sys.stderr.write("cannot open the log file\\n")
        sys.exit(1)
    if "standin: errors" in text:
        body = {multi_error!r}.replace({broken_path!r}, windows)
    else:
        lines = [
            "MetaEditor 5 build 4755 started (x64)",
            windows + " : information: compiling '" + name + "'",
            windows + " : information: code generated",
            "Result: 0 errors, 0 warnings, 412 msec elapsed, cpu='X64 Regular'",
            "",
        ]
        body = "\\r\\n".join(lines)
        with open(source[:-4] + ".ex5", "wb") as f:
            f.write(b"EX5\\x00" + text.encode("utf-8"))
    with open(log, "wb") as f:
        f.write(b"\\xff\\xfe" + body.encode("utf-16-le"))
    sys.exit(1 if "standin: errors" in text else 0)
    """
)


def write_standin_metaeditor(folder: Path) -> Path:
    """An executable stand-in for metaeditor64.exe (a Python script with a shebang)."""
    path = folder / "metaeditor-standin"
    path.write_text(
        STANDIN.format(
            python=sys.executable,
            multi_error=MULTI_ERROR_LOG,
            broken_path=rf"{DATA}\Experts\MT5Console\Broken.mq5",
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def sim_folders(root: Path) -> TerminalFolders:
    return TerminalFolders(
        data=root / "terminal",
        common=root / "common",
        install=root / "install",
        reported_data_path=str(root / "terminal"),
    )


def test_parse_a_real_multi_error_log() -> None:
    data = b"\xff\xfe" + MULTI_ERROR_LOG.encode("utf-16-le")
    log = parse_compile_log(decode_compile_log(data))
    assert log.error_count == 3 and log.warning_count == 1
    assert log.errors == (
        CompileMessage("Broken.mq5", 14, 11, 256, "'lots' - undeclared identifier"),
        CompileMessage("Broken.mq5", 21, 5, 149, "'else' - unexpected token"),
        CompileMessage("Broken.mq5", 27, 1, 145, "'}' - unexpected end of program"),
    )
    assert log.warnings == (
        CompileMessage(
            "Broken.mq5", 14, 25, 43, "possible loss of data due to type conversion from 'double' to 'int'"
        ),
    )


def test_log_lines_without_position_and_paths_with_parentheses() -> None:
    text = "\n".join(
        [
            r"C:\Program Files (x86)\MT5\MQL5\Experts\A.mq5(3,11) : error 106: file 'X.mqh' not found",
            r"C:\Program Files (x86)\MT5\MQL5\Experts\A.mq5 : error 123: some global error",
            "Result: 2 errors, 0 warnings, 10 msec elapsed",
        ]
    )
    log = parse_compile_log(text)
    assert log.errors == (
        CompileMessage("A.mq5", 3, 11, 106, "file 'X.mqh' not found"),
        CompileMessage("A.mq5", 0, 0, 123, "some global error"),
    )


def test_decode_accepts_utf8_and_bomless_utf16() -> None:
    assert decode_compile_log(b"Result: 0 errors, 0 warnings") == "Result: 0 errors, 0 warnings"
    assert decode_compile_log("Result: 1 errors".encode("utf-16-le")) == "Result: 1 errors"


async def test_compile_inline_source(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    compiler = Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)), timeout=30)
    result = await compiler.compile(folders, "Grid", source=GOOD_SOURCE)
    source = folders.data / "MQL5" / "Experts" / "MT5Console" / "Grid.mq5"
    assert source.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, as MetaEditor wants
    assert source.read_text(encoding="utf-8-sig") == GOOD_SOURCE
    assert result.compiled and result.errors == () and result.warnings == ()
    assert result.ex5_path == source.with_suffix(".ex5") and result.ex5_path.is_file()
    assert result.output() == {
        "compiled": True,
        "errors": [],
        "warnings": [],
        "ex5_path": str(result.ex5_path),
    }


async def test_compile_errors_are_structured_and_a_stale_ex5_is_not_reported(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    compiler = Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)), timeout=30)
    await compiler.compile(folders, "Broken", source=GOOD_SOURCE)
    assert folders.ex5_file("Broken").is_file()  # the last good build
    result = await compiler.compile(folders, "Broken", source=BROKEN_SOURCE)
    assert not result.compiled and result.ex5_path is None
    assert not folders.ex5_file("Broken").exists()
    output = result.output()
    assert output["errors"][0] == {
        "file": "Broken.mq5",
        "line": 14,
        "column": 11,
        "code": 256,
        "message": "'lots' - undeclared identifier",
    }
    assert [e["code"] for e in output["errors"]] == [256, 149, 145]
    assert [w["code"] for w in output["warnings"]] == [43]


async def test_compile_fetches_the_artifact_by_version(tmp_path: Path) -> None:
    asked: list[str] = []

    async def fetch(version_id: str) -> str:
        asked.append(version_id)
        return GOOD_SOURCE

    folders = sim_folders(tmp_path)
    compiler = Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)), fetch_artifact=fetch)
    result = await compiler.compile(folders, "Fetched", version_id="v-42")
    assert asked == ["v-42"] and result.compiled


async def test_an_artifact_above_the_limit_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    async def fetch(version_id: str) -> str:
        return "x" * 2_001

    folders = sim_folders(tmp_path)
    compiler = Compiler(
        metaeditor_path=str(write_standin_metaeditor(tmp_path)), max_source_bytes=2_000, fetch_artifact=fetch
    )
    with pytest.raises(CompileError, match=r"2,001 bytes, more than the 2,000 allowed"):
        await compiler.compile(folders, "Big", version_id="v1")
    assert not folders.experts.exists()


async def test_a_failing_fetch_and_no_fetcher_are_clear_errors(tmp_path: Path) -> None:
    async def fetch(version_id: str) -> str:
        raise ConnectionError("platform unreachable")

    folders = sim_folders(tmp_path)
    with pytest.raises(
        CompileError, match="could not fetch the source of EA version v9: platform unreachable"
    ):
        await Compiler(fetch_artifact=fetch).compile(folders, "X", version_id="v9")
    with pytest.raises(CompileError, match="no platform is configured"):
        await Compiler().compile(folders, "X", version_id="v9")


async def test_metaeditor_that_overruns_is_killed(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    compiler = Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)), timeout=1.0)
    with pytest.raises(CompileError, match=r"did not finish within 1 s and was stopped"):
        await compiler.compile(folders, "Slow", source=HANGING_SOURCE)
    pid = int((folders.experts / "standin.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: the process is gone


async def test_metaeditor_that_writes_no_log(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    compiler = Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)))
    with pytest.raises(CompileError, match=r"wrote no log .*exit code 1.*cannot open the log file"):
        await compiler.compile(folders, "Silent", source=SILENT_SOURCE)


async def test_missing_metaeditor_names_the_setting(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    with pytest.raises(CompileError, match=r"MetaEditor is not at .*metaeditor64.exe; set --metaeditor-path"):
        await Compiler().compile(folders, "Grid", source=GOOD_SOURCE)


@pytest.mark.parametrize(
    "name", ["../evil", "a/b", "a\\b", "..", "", "  ", "Grid.mq5", "CON", "a:b", "x\ny", "trailing."]
)
def test_ea_names_that_could_escape_or_break_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidEaName):
        check_ea_name(name)


async def test_a_bad_ea_name_writes_nothing(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    compiler = Compiler(metaeditor_path=str(write_standin_metaeditor(tmp_path)))
    with pytest.raises(InvalidEaName, match="path separators"):
        await compiler.compile(folders, "../../evil", source=GOOD_SOURCE)
    assert not (tmp_path / "terminal").exists()


@pytest.mark.skipif(os.name == "nt", reason="Wine paths exist only off Windows")
def test_wine_paths_and_the_command_line(tmp_path: Path) -> None:
    prefix = tmp_path / "wine"
    data = local_path(r"C:\users\me\AppData\Roaming\MetaQuotes\Terminal\ABC", prefix=prefix)
    assert data == prefix / "dosdevices" / "c:" / "users" / "me" / "AppData" / "Roaming" / "MetaQuotes" / (
        "Terminal/ABC"
    )
    assert local_path("/tmp/sim/terminal") == Path("/tmp/sim/terminal")
    inside = prefix / "drive_c" / "MT5" / "MQL5" / "Experts" / "A.mq5"
    assert wine_path(inside, prefix=prefix) == r"C:\MT5\MQL5\Experts\A.mq5"
    assert wine_path(Path("/srv/a.log"), prefix=prefix) == r"Z:\srv\a.log"
    # The terminal's own folders come back as the terminal named them, not as Z:\...\dosdevices\c:\...
    assert wine_path(data / "MQL5" / "Experts" / "A.mq5", prefix=prefix) == (
        r"C:\users\me\AppData\Roaming\MetaQuotes\Terminal\ABC\MQL5\Experts\A.mq5"
    )
    command = metaeditor_command(Path("/opt/mt5/metaeditor64.exe"), Path("/srv/A.mq5"), Path("/srv/A.log"))
    assert command[:2] == ["wine", "/opt/mt5/metaeditor64.exe"]
    assert command[2:] == [r"/compile:Z:\srv\A.mq5", r"/log:Z:\srv\A.log"]
    native = metaeditor_command(Path("/opt/standin"), Path("/srv/A.mq5"), Path("/srv/A.log"))
    assert native == ["/opt/standin", "/compile:/srv/A.mq5", "/log:/srv/A.log"]
