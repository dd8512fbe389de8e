"""deploy / run / stop: the command and answer files, the chart template, and a stand-in controller EA."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import pytest

from mt5console.core.agent.chart_template import InvalidInputs, chart_template, read_template
from mt5console.core.agent.ea_control import (
    CONTROLLER_SOURCE,
    ControllerTimeout,
    EAControl,
    EAControlError,
    decode_fields,
    encode_fields,
)
from mt5console.core.agent.terminal_files import TerminalFolders

Reply = Callable[[dict[str, str], TerminalFolders], tuple[str, str]]


def sim_folders(root: Path) -> TerminalFolders:
    return TerminalFolders(
        data=root / "terminal",
        common=root / "common",
        install=root / "install",
        reported_data_path=str(root / "terminal"),
    )


def controller_reply(command: dict[str, str], folders: TerminalFolders) -> tuple[str, str]:
    """What the MQL5 controller does, reduced to its checks: run needs the template the command
    names (relative to MQL5 because it starts with a backslash) and an EA in it."""
    if command["action"] == "run":
        template = folders.data / "MQL5" / Path(*PureWindowsPath(command["template"]).parts[1:])
        if not template.is_file():
            return "error", f"ChartApplyTemplate({command['template']}) failed: error 5019"
        if f"name={command['ea']}" not in read_template(template):
            return "error", "the template carries another EA"
        return "ok", f"{command['ea']} runs on {command['symbol']}"
    if command["action"] == "stop":
        return "ok", f"closed 1 chart(s) running {command['ea']}"
    return "error", f"unknown action '{command['action']}'"


@dataclass
class StandInController:
    """A thread doing what MT5ConsoleController.mq5 does with the files: take each <id>.cmd of its
    terminal, delete it, and answer in <id>.ans (written under a temporary name, then renamed)."""

    folders: TerminalFolders
    reply: Reply = controller_reply
    answer: bool = True  # False: take commands and never answer (a controller stuck or crashed)
    commands: list[dict[str, str]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        control = self.folders.control
        while not self.stopping.is_set():
            for command_file in sorted(control.glob("*.cmd")) if control.is_dir() else []:
                command = decode_fields(command_file.read_bytes())
                if command.get("data_path") != self.folders.reported_data_path:
                    continue  # another terminal's command
                command_file.unlink()
                self.commands.append(command)
                if self.answer:
                    status, message = self.reply(command, self.folders)
                    partial = control / f"{command['id']}.ans.tmp"
                    partial.write_bytes(
                        encode_fields(
                            {"id": command["id"], "status": status, "message": message, "chart": "7"}
                        )
                    )
                    partial.rename(control / f"{command['id']}.ans")
            time.sleep(0.02)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[StandInController]:
    stand_in = StandInController(sim_folders(tmp_path))
    thread = threading.Thread(target=stand_in.run, name="standin-controller", daemon=True)
    thread.start()
    yield stand_in
    stand_in.stopping.set()
    thread.join(timeout=5)


def deployed(folders: TerminalFolders, ea: str) -> Path:
    path = folders.ex5_file(ea)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"EX5\x00compiled")
    return path


async def test_run_writes_the_template_and_the_command(controller: StandInController) -> None:
    folders = controller.folders
    deployed(folders, "Grid")
    control = EAControl(answer_timeout=5, poll_interval=0.02)
    output = await control.run(
        folders, "Grid", "EURUSD", "H1", {"Lots": 0.1, "UseTrail": True, "Note": "a b"}
    )
    assert output == {"running": True}
    [command] = controller.commands
    assert command["action"] == "run" and command["ea"] == "Grid" and command["symbol"] == "EURUSD"
    assert command["timeframe"] == "H1" and command["period"] == "16385"  # PERIOD_H1
    assert command["template"] == "\\Files\\MT5Console\\Grid.tpl"
    assert command["data_path"] == str(folders.data)
    template = folders.data / "MQL5" / "Files" / "MT5Console" / "Grid.tpl"
    raw = template.read_bytes()
    assert raw.startswith(b"\xff\xfe")  # UTF-16 LE with a BOM, as the terminal writes templates
    text = read_template(template)
    assert "\r\n" in text
    lines = text.splitlines()
    expert = lines[lines.index("<expert>") : lines.index("</expert>") + 1]
    assert expert == [
        "<expert>",
        "name=Grid",
        "path=Experts\\MT5Console\\Grid.ex5",
        "expertmode=5",
        "<inputs>",
        "Lots=0.1",
        "UseTrail=true",
        "Note=a b",
        "</inputs>",
        "</expert>",
    ]
    assert lines[0] == "<chart>" and lines[-1] == "</chart>" and "name=Main" in lines
    assert not list(folders.control.glob("*.cmd")) and not list(folders.control.glob("*.ans"))


async def test_stop_sends_the_ea_and_symbol(controller: StandInController) -> None:
    control = EAControl(answer_timeout=5, poll_interval=0.02)
    assert await control.stop(controller.folders, "Grid", "EURUSD") == {"stopped": True}
    assert await control.stop(controller.folders, "Grid") == {"stopped": True}
    assert [(c["action"], c["ea"], c["symbol"]) for c in controller.commands] == [
        ("stop", "Grid", "EURUSD"),
        ("stop", "Grid", ""),
    ]


async def test_a_controller_error_is_the_jobs_reason(controller: StandInController) -> None:
    def refuse(command: dict[str, str], folders: TerminalFolders) -> tuple[str, str]:
        return "error", "Grid did not start within 15 s; see the Experts journal"

    controller.reply = refuse
    deployed(controller.folders, "Grid")
    control = EAControl(answer_timeout=5, poll_interval=0.02)
    with pytest.raises(
        EAControlError, match="could not start Grid on EURUSD M5: Grid did not start within 15 s"
    ):
        await control.run(controller.folders, "Grid", "EURUSD", "M5")


async def test_run_refuses_an_ea_that_is_not_deployed(controller: StandInController) -> None:
    control = EAControl(answer_timeout=5, poll_interval=0.02)
    with pytest.raises(EAControlError, match="Grid is not deployed"):
        await control.run(controller.folders, "Grid", "EURUSD", "H1")
    assert controller.commands == []


async def test_no_controller_times_out_with_the_setup_hint(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    deployed(folders, "Grid")
    control = EAControl(answer_timeout=0.3, poll_interval=0.02)
    started = time.monotonic()
    with pytest.raises(ControllerTimeout, match=r"no MT5ConsoleController answered within 0.3 s: attach"):
        await control.run(folders, "Grid", "EURUSD", "H1")
    assert 0.3 <= time.monotonic() - started < 3
    # The command is taken back, so a controller attached later does not act on a stale request.
    assert list(folders.control.iterdir()) == []


async def test_a_controller_that_takes_the_command_but_never_answers(controller: StandInController) -> None:
    controller.answer = False
    control = EAControl(answer_timeout=0.5, poll_interval=0.02)
    with pytest.raises(ControllerTimeout, match=r"took the command but gave no answer within 0\.5 s"):
        await control.stop(controller.folders, "Grid")
    assert len(controller.commands) == 1


async def test_another_terminals_controller_leaves_the_command(tmp_path: Path) -> None:
    other = StandInController(
        TerminalFolders(tmp_path / "other", tmp_path / "common", tmp_path / "i", str(tmp_path / "other"))
    )
    thread = threading.Thread(target=other.run, daemon=True)
    thread.start()
    try:
        with pytest.raises(ControllerTimeout, match="no MT5ConsoleController answered"):
            await EAControl(answer_timeout=0.3, poll_interval=0.02).stop(sim_folders(tmp_path), "Grid")
    finally:
        other.stopping.set()
        thread.join(timeout=5)
    assert other.commands == []


def test_deploy_copies_an_ex5_and_checks_it(tmp_path: Path) -> None:
    folders = sim_folders(tmp_path)
    control = EAControl()
    with pytest.raises(EAControlError, match=r"Grid\.ex5 is not in .*send a compile job first"):
        control.deploy(folders, "Grid")
    built = tmp_path / "build" / "Grid.ex5"
    built.parent.mkdir()
    built.write_bytes(b"EX5\x00v2")
    output = control.deploy(folders, "Grid", str(built))
    target = folders.data / "MQL5" / "Experts" / "MT5Console" / "Grid.ex5"
    assert output == {"deployed": True, "path": str(target)} and target.read_bytes() == b"EX5\x00v2"
    assert control.deploy(folders, "Grid") == output  # the compiled one in place
    assert control.deploy(folders, "Grid", str(target)) == output  # itself: nothing to copy
    with pytest.raises(EAControlError, match="does not exist"):
        control.deploy(folders, "Grid", str(tmp_path / "missing.ex5"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(EAControlError, match=r"is not an \.ex5 file"):
        control.deploy(folders, "Grid", str(tmp_path / "notes.txt"))
    assert target.read_bytes() == b"EX5\x00v2"


def test_template_inputs_are_checked() -> None:
    with pytest.raises(InvalidInputs, match="not an MQL5 identifier"):
        chart_template("Grid", {"bad name": 1})
    with pytest.raises(InvalidInputs, match="on one line"):
        chart_template("Grid", {"Note": "a\nb"})
    with pytest.raises(InvalidInputs, match="not a string, number or true/false"):
        chart_template("Grid", {"Lots": [1]})  # type: ignore[dict-item]


def test_the_controller_source_ships_with_the_package() -> None:
    source = CONTROLLER_SOURCE.read_text()
    for call in ("FileOpen(", "FILE_COMMON", "ChartOpen(", "ChartApplyTemplate(", "ChartClose(", "FileMove("):
        assert call in source
