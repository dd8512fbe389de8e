"""Imports point down only (DESIGN.md): no module of the core imports one from a layer above its own.

Every module under ``mt5console/core/`` is parsed with ``ast``; every import is checked, wherever it
stands (module level, inside a function, under ``if TYPE_CHECKING``), absolute or relative.

The layers, top to bottom (a higher number may import a lower one or its own, never a higher one):

7 runtime   ``runtime.py`` and ``replay*.py``: the replay is a second runtime over the same parts.
6 commands  ``commands/``.
5 strategy  ``strategy/``.
4 agent     ``agent/``. DESIGN.md puts agent and market side by side under strategy; the code decides
            their order: the agent reads the market-data poller's ticks and symbols (``agent/prices.py``,
            ``agent/agent.py``) while the market never needs the agent, so agent sits over market and
            a circle between the two is impossible.
3 market    ``market.py``, and ``limits.py``: the hard limits read the account and the deal history
            through the broker and are consulted by the strategies and by the agent's trade jobs, so
            they sit where market does, over the broker and under both of their users.
2 broker    ``broker/`` (the adapter, the simulator, volume rounding) except ``broker/models.py``.
1 logsink   ``logsink.py``: writes events into the store and the log file, so it sits right over both;
            only the runtime uses it.
0 base      ``store/``, ``settings.py``, ``events.py``, ``timeframes.py`` and ``broker/models.py``: the
            core's frozen dataclasses import nothing and are the vocabulary the events carry
            (``events.py`` imports them), so they stand with the events at the bottom; and
            ``data_lock.py`` (one console per data dir) and the ``file_lock.py`` it shares with the
            simulator's state file, which import nothing else of the core.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import mt5console.core

CORE = Path(mt5console.core.__file__).parent
PACKAGE = "mt5console.core"

# (layer, rank, where): ``where`` is a file or a folder (ending in "/") relative to core/, or a glob.
# The first match wins, so broker/models.py is listed before broker/.
LAYERS: tuple[tuple[str, int, str], ...] = (
    ("runtime", 7, "runtime.py"),
    ("runtime", 7, "replay*.py"),
    ("commands", 6, "commands/"),
    ("strategy", 5, "strategy/"),
    ("agent", 4, "agent/"),
    ("market", 3, "market.py"),
    ("market", 3, "limits.py"),
    ("base", 0, "broker/models.py"),
    ("broker", 2, "broker/"),
    ("logsink", 1, "logsink.py"),
    ("base", 0, "store/"),
    ("base", 0, "settings.py"),
    ("base", 0, "events.py"),
    ("base", 0, "timeframes.py"),
    ("base", 0, "data_lock.py"),
    ("base", 0, "file_lock.py"),
    ("base", 0, "__init__.py"),
)


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    rank: int


def layer_of(relative: str) -> Layer | None:
    """The layer of a file given relative to core/ ("agent/jobs/handlers.py"), None when unplaced."""
    path = PurePosixPath(relative)
    for name, rank, where in LAYERS:
        if where.endswith("/") and relative.startswith(where):
            return Layer(name, rank)
        if (
            not where.endswith("/")
            and path.match(where)
            and len(path.parts) == len(PurePosixPath(where).parts)
        ):
            return Layer(name, rank)
    return None


def module_file(module: str, core: Path = CORE) -> str | None:
    """The file of ``mt5console.core.x.y`` relative to core/ ("x/y.py" or "x/y/__init__.py")."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    parts = module.split(".")[2:]
    as_package = PurePosixPath(*parts, "__init__.py")
    if (core.joinpath(*as_package.parts)).is_file():
        return str(as_package)
    return str(PurePosixPath(*parts[:-1], parts[-1] + ".py")) if parts else "__init__.py"


def imported_modules(node: ast.Import | ast.ImportFrom, relative: str) -> list[str]:
    """The core modules an import statement in the file ``relative`` (to core/) brings in."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = PurePosixPath(relative).parent.parts
        keep = len(package) - (node.level - 1)
        if keep < 0:
            return []  # above core/: not the core's
        module = ".".join((PACKAGE, *package[:keep], *([node.module] if node.module else [])))
    else:
        module = node.module or ""
    # ``from mt5console.core.broker import sim`` imports the submodule sim, not the package.
    names = [f"{module}.{alias.name}" for alias in node.names]
    submodules = [name for name in names if _is_module(name)]
    return submodules + ([module] if len(submodules) < len(names) else [])


def _is_module(module: str) -> bool:
    relative = module_file(module)
    return relative is not None and CORE.joinpath(relative).is_file()


def violations(source: str, relative: str) -> list[str]:
    """Every import in ``source`` (the file ``relative`` to core/) that points to a higher layer."""
    own = layer_of(relative)
    assert own is not None, (
        f"core/{relative} is in no layer: place it in LAYERS (tests/test_import_layers.py)"
    )
    found = []
    for node in ast.walk(ast.parse(source, relative)):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for module in imported_modules(node, relative):
            target_file = module_file(module)
            if target_file is None:
                continue  # not the core: the core-only rule is tests/test_core_imports.py's
            target = layer_of(target_file)
            assert target is not None, f"core/{target_file} (imported by core/{relative}) is in no layer"
            if target.rank > own.rank:
                found.append(
                    f"core/{relative}:{node.lineno} imports {module}:"
                    f" {own.name} (layer {own.rank}) must not import {target.name} (layer {target.rank})"
                )
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_every_core_module_has_a_layer() -> None:
    unplaced = [
        str(p.relative_to(CORE)) for p in core_files() if layer_of(p.relative_to(CORE).as_posix()) is None
    ]
    assert unplaced == []


def test_no_core_module_imports_a_layer_above_its_own() -> None:
    files = core_files()
    assert len(files) > 100 and CORE / "agent" / "jobs" / "handlers.py" in files
    found = [
        line for path in files for line in violations(path.read_text(), path.relative_to(CORE).as_posix())
    ]
    assert found == [], "imports pointing up:\n" + "\n".join(found)


def test_the_layers_are_those_of_the_design() -> None:
    assert layer_of("runtime.py") == Layer("runtime", 7)
    assert layer_of("replay_report.py") == Layer("runtime", 7)
    assert layer_of("commands/pusher/source.py") == Layer("commands", 6)
    assert layer_of("strategy/filters/mtf.py") == Layer("strategy", 5)
    assert layer_of("agent/jobs/handlers.py") == Layer("agent", 4)
    assert layer_of("market.py") == layer_of("limits.py") == Layer("market", 3)
    assert layer_of("broker/sim/feed.py") == layer_of("broker/volume.py") == Layer("broker", 2)
    assert (
        layer_of("broker/models.py")
        == layer_of("store/tables.py")
        == layer_of("events.py")
        == Layer("base", 0)
    )
    assert layer_of("sim/feed.py") is None


def test_an_upward_import_is_named_with_file_line_and_both_layers() -> None:
    source = (
        "from mt5console.core.broker.models import Side\n"
        "from ..market import MarketData\n"
        "def later() -> None:\n"
        "    from mt5console.core.strategy import risk\n"
        "    import mt5console.core.commands.bus\n"
        "    from mt5console.core import runtime\n"
    )
    up = "core/agent/prices.py:{} imports mt5console.core.{}: agent (layer 4) must not import {}"
    assert violations(source, "agent/prices.py") == [
        up.format(4, "strategy.risk", "strategy (layer 5)"),
        up.format(5, "commands.bus", "commands (layer 6)"),
        up.format(6, "runtime", "runtime (layer 7)"),
    ]
    assert violations("from .models import Tick\nfrom ..events import Event\n", "broker/mt5.py") == []
    assert violations("from . import engine\n", "strategy/filters/pipeline.py") == []
    assert violations("from .. import market\n", "broker/mt5.py") == [
        "core/broker/mt5.py:1 imports mt5console.core.market:"
        " broker (layer 2) must not import market (layer 3)"
    ]
