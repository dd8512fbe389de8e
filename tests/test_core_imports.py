"""The core stays UI-free: importing every core module pulls in neither textual nor rich."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import mt5console.core

CORE = Path(mt5console.core.__file__).parent


def core_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages([str(CORE)], prefix="mt5console.core.")
        if not info.name.endswith("__main__")
    )


def test_core_imports_neither_textual_nor_rich() -> None:
    modules = core_modules()
    assert "mt5console.core.runtime" in modules and "mt5console.core.broker.mt5" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"the core imported {result.stdout.strip()}"


def test_core_imports_nothing_of_mt5console_outside_core() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("import mt5console", "from mt5console")) and not stripped.startswith(
                ("from mt5console.core", "import mt5console.core")
            ):
                offenders.append(f"{path.relative_to(CORE)}:{number}: {stripped}")
    assert offenders == []
