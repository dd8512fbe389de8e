"""``mt5console check STRATEGY.json``: exit 0 with a summary when valid, 2 with every error when not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "strategies").glob("*.json"))


def check(path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mt5console.cli", "check", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_is_valid_and_summarised(example: Path) -> None:
    result = check(example)
    assert result.returncode == 0, result.stderr
    data = json.loads(example.read_text())
    assert f"({data['strategyId']}) trades {data['symbol']} on {data['timeframe']}" in result.stdout


def test_an_invalid_strategy_lists_every_error_with_its_path(tmp_path: Path) -> None:
    data = json.loads(EXAMPLES[0].read_text())
    data["timeframe"] = "M2"
    data["rules"]["entry"]["conditions"][0]["indicator"] = "emma_9"
    data["rules"]["riskManagement"]["lotSize"] = 0.004
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = check(path)
    assert result.returncode == 2
    assert "timeframe:" in result.stderr
    assert "unknown indicator 'emma_9'" in result.stderr
    assert "rules.entry.conditions[0].indicator" in result.stderr
    assert "below" in result.stderr and "minimum 0.01" in result.stderr
    assert result.stdout == ""


def test_a_news_filter_is_refused_plainly(tmp_path: Path) -> None:
    data = json.loads(EXAMPLES[0].read_text())
    data["rules"]["newsFilter"] = {"enabled": True}
    path = tmp_path / "news.json"
    path.write_text(json.dumps(data))
    result = check(path)
    assert result.returncode == 2
    assert "  rules.newsFilter: no economic calendar source" in result.stderr


def test_missing_file_and_broken_json(tmp_path: Path) -> None:
    assert check(tmp_path / "nope.json").returncode == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"strategyId": ')
    result = check(broken)
    assert result.returncode == 2 and "line 1" in result.stderr


def test_what_the_terminal_will_settle_or_change_is_noted(tmp_path: Path) -> None:
    data = json.loads((EXAMPLES[0].parent / "ema_cross_eurusd_m1.json").read_text())
    data["rules"]["riskManagement"]["lotSize"] = 0.015
    path = tmp_path / "odd_lot.json"
    path.write_text(json.dumps(data))
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "note: lotSize 0.015 trades as 0.01 lots on EURUSD: lots are rounded down to its volume step 0.01 "
        "(as on a typical broker; the terminal's own step decides)"
    )
    data["rules"]["riskManagement"]["lotSize"] = 250  # above the maximum: cut to it, not refused
    path.write_text(json.dumps(data))
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "note: lotSize 250 trades as 100.00 lots on EURUSD: lots are cut to its maximum 100.00 "
        "(as on a typical broker; the terminal's own maximum decides)"
    )
    data["symbol"] = "EURUSD.m"  # a broker's own name: only the terminal can say
    path.write_text(json.dumps(data))
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        "note: EURUSD.m is not one of the simulator's symbols: the terminal it runs on must know it"
    )
    assert "note:" not in check(EXAMPLES[0]).stdout  # nothing to say of a plain example


def test_a_name_outside_a_redirected_outputs_encoding_is_escaped_not_a_traceback(tmp_path: Path) -> None:
    """Redirected on Windows, stdout is in a code page (cp1252): a Chinese or Cyrillic strategy name, or
    folder, ended `check` with a UnicodeEncodeError."""
    folder = tmp_path / "Стратегии"
    folder.mkdir()
    strategy = json.loads(EXAMPLES[0].read_text()) | {"strategyName": "EMA 交叉 → Euro"}
    path = folder / "s.json"
    path.write_text(json.dumps(strategy, ensure_ascii=False), encoding="utf-8")
    command = [sys.executable, "-m", "mt5console.cli", "check", str(path)]
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, encoding="cp1252")
    assert result.returncode == 0, result.stderr
    assert "EMA \\u4ea4\\u53c9 \\u2192 Euro" in result.stdout
