"""Rules of STRATEGY_FORMAT.md that an audit found the engine breaking, each pinned by a test."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mt5console.core.broker.models import Side
from mt5console.core.strategy.model import StrategyError, load_strategy_file, parse_strategy
from mt5console.core.strategy.risk import size_position
from tests.helpers import SEED_STRATEGY, always_buy, make_rig
from tests.market_data import EURUSD


def test_a_lot_size_above_the_symbols_maximum_is_clamped_not_refused() -> None:
    # "Volumes are rounded DOWN to the symbol's volume_step and clamped to volume_min..volume_max;
    # a volume that rounds to less than volume_min is an error".
    data: dict[str, Any] = copy.deepcopy(SEED_STRATEGY)
    data["rules"]["riskManagement"]["lotSize"] = 250.004
    strategy = parse_strategy(data, symbol_spec=lambda symbol: EURUSD)
    sizing = size_position(
        strategy.risk, balance=None, spec=EURUSD, entry_price=1.1, stop_distance=0.0025, atr=None
    )
    assert (sizing.volume, sizing.clamped_to_max) == (EURUSD.volume_max, True)
    assert sizing.explanation.endswith("(cut from 250.004 to EURUSD's maximum 100.00)")

    # The other end stays an error, never a silent minimum lot.
    data["rules"]["riskManagement"]["lotSize"] = 0.009
    with pytest.raises(StrategyError) as caught:
        parse_strategy(data, symbol_spec=lambda symbol: EURUSD)
    assert str(caught.value) == (
        "rules.riskManagement.lotSize: 0.009 rounds down to 0.00, below EURUSD's minimum 0.01"
    )


@pytest.mark.parametrize("name", ["ema_ 9", "ema_+9", "ema_1e1", "sar_0.02_2e-1"])
def test_an_operand_parameter_must_be_written_as_a_plain_number(name: str) -> None:
    # "Names are lower case, parameters joined with `_`": float() would read each of these.
    data: dict[str, Any] = copy.deepcopy(SEED_STRATEGY)
    data["rules"]["entry"]["conditions"][0]["indicator"] = name
    with pytest.raises(StrategyError) as caught:
        parse_strategy(data)
    [error] = caught.value.errors
    assert error.path == "rules.entry.conditions[0].indicator"
    assert "must be a number, not" in error.message


@pytest.mark.parametrize("name", ["ema_9.0", "sar_.02", "bb_lower_20_2.5"])
def test_plain_decimal_parameters_stay_valid(name: str) -> None:
    data: dict[str, Any] = copy.deepcopy(SEED_STRATEGY)
    data["rules"]["entry"]["conditions"][0]["indicator"] = name
    assert parse_strategy(data).entries[0].conditions.children[0] is not None


async def test_an_atr_stop_with_a_long_period_gets_enough_live_bars(tmp_path: Path) -> None:
    # "`atr` (`atrMultiplier` x ATR(14) at entry, `atrPeriod` to change it)": the live feed must hold
    # enough closed bars for ATR(atrPeriod), not only for the conditions' operands.
    rig = await make_rig(tmp_path)
    try:
        exit_rules = {"stopLoss": {"type": "atr", "atrMultiplier": 2, "atrPeriod": 400}}
        await rig.engine.start(always_buy(rules={"exit": exit_rules}), source="test")
        await rig.market.poll_once()
        await rig.bar()
        assert "has no value yet" not in rig.text()
        [position] = await rig.broker.positions()
        assert 0 < position.sl < position.price_open
    finally:
        await rig.close()


async def test_a_structure_stop_with_a_long_lookback_gets_enough_live_bars(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path)
    try:
        exit_rules = {
            "smartExit": {"enabled": True, "stopLoss": {"type": "structure", "lookbackBars": 450}},
        }
        await rig.engine.start(always_buy(rules={"exit": exit_rules}), source="test")
        await rig.market.poll_once()
        await rig.bar()
        assert "closed bars, only" not in rig.text()
        [position] = await rig.broker.positions()
        assert 0 < position.sl < position.price_open
    finally:
        await rig.close()


def test_a_key_given_twice_in_a_file_is_named_by_its_field_path(tmp_path: Path) -> None:
    # "a bad strategy is rejected as a whole with a message that names the field path".
    path = tmp_path / "twice.json"
    path.write_text(
        '{"strategyId": "a", "rules": {"exit": {"stopLoss": {"type": "pips", "value": 10},'
        ' "stopLoss": {"type": "pips", "value": 20}}, "entries": [{"side": "buy", "side": "sell"}]}}'
    )
    with pytest.raises(StrategyError) as caught:
        load_strategy_file(path)
    assert [error.message for error in caught.value.errors] == [
        f"{path}: invalid JSON: the key 'stopLoss' appears twice in one object (rules.exit.stopLoss)",
        f"{path}: invalid JSON: the key 'side' appears twice in one object (rules.entries[0].side)",
    ]


async def test_max_positions_counts_a_position_of_the_strategys_magic_whatever_its_comment(
    tmp_path: Path,
) -> None:
    # "maxPositions counts this strategy's open positions (recognised by magic number and comment)".
    # The magic is derived from the strategy id; a broker's gateway may rewrite or drop the comment,
    # and a strategy that stopped recognising its own position would open past maxPositions.
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(
            always_buy(rules={"riskManagement": {"lotSize": 0.01, "maxPositions": 1}}), source="test"
        )
        record = rig.store.get_strategy("always")
        assert record is not None
        await rig.broker.open_market("EURUSD", Side.BUY, 0.01, magic=record.magic, comment="")
        await rig.market.poll_once()
        await rig.bar()
        assert "entry blocked: maxPositions 1 reached (1 open)" in rig.text()
        assert len(await rig.broker.positions()) == 1
    finally:
        await rig.close()


async def test_a_bar_on_which_both_entry_blocks_hold_opens_one_position(tmp_path: Path) -> None:
    # "An entry fires at most once per closed bar per strategy": with rules.entries, a bar on which
    # the buy block and the sell block both hold opens the first listed, never a buy and a sell.
    holds = [{"indicator": "close", "condition": "greater_than", "value": 0}]
    entries = [{"side": "buy", "conditions": holds}, {"side": "sell", "conditions": holds}]
    data = always_buy(rules={"entries": entries})
    del data["rules"]["entry"]
    rig = await make_rig(tmp_path)
    try:
        await rig.engine.start(data, source="test")
        await rig.market.poll_once()
        await rig.bar()
        [position] = await rig.broker.positions()
        assert position.side is Side.BUY
        assert "sell signal on EURUSD M1 not taken: the buy signal had this bar's one entry" in rig.text()
        await rig.bar()
        assert [p.side for p in await rig.broker.positions()] == [Side.BUY, Side.BUY]
    finally:
        await rig.close()


@pytest.mark.parametrize("timeframe", ["H4", "D1"])
def test_the_formats_example_on_a_long_timeframe_is_valid_while_its_mtf_block_is_off(timeframe: str) -> None:
    # The example's mtf block (disabled, H4 and D1) is what a platform sends with every strategy.
    data: dict[str, Any] = copy.deepcopy(SEED_STRATEGY)
    data["timeframe"] = timeframe
    assert parse_strategy(data).filters.mtf.enabled is False
    data["rules"]["mtf"]["enabled"] = True  # on, it must look above the strategy's timeframe
    with pytest.raises(StrategyError) as caught:
        parse_strategy(data)
    assert f"is not higher than the strategy's timeframe {timeframe}" in str(caught.value)
