"""Daily limits are per ledger asset (``chain:SYMBOL``), in that asset's own decimals.

On ce842d2 a limit was keyed by symbol and parsed with the decimals of the last chain listing it: with
USDT at 6 decimals on one chain and 18 on another, a 100 USDT limit let 900,000 USDT through."""

from __future__ import annotations

from typing import Any

import pytest

from teller.config import ConfigError, settings_from_mapping
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN


def _raw(limits: dict[str, Any]) -> dict[str, Any]:
    def chain(name: str, chain_id: int, decimals: int) -> dict[str, Any]:
        return {"name": name, "chain_id": chain_id, "rpc_url": "http://127.0.0.1:1",
                "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0"},
                "tokens": [{"symbol": "USDT", "contract": "0x" + f"{chain_id:040x}", "decimals": decimals,
                            "min_withdrawal": "1", "withdrawal_fee": "0"}]}
    return {"auth": {"bot_token": BOT_TOKEN, "jwt_secret": "j" * 48, "ops_token": OPS_TOKEN},
            "chains": [chain("six", 1, 6), chain("eighteen", 2, 18)],
            "limits": {"withdrawal_daily_per_user": limits}}


def test_each_limit_is_parsed_in_its_own_assets_decimals() -> None:
    settings = settings_from_mapping(_raw({"six:USDT": "100", "eighteen:USDT": "100", "six:ETH": 5}), environ={})
    assert settings.withdrawal_daily_limits_minor == {
        "six:USDT": 100 * 10**6, "eighteen:USDT": 100 * 10**18, "six:ETH": 5 * 10**18}


@pytest.mark.parametrize("limits, words", [
    ({"USDT": "100"}, "chain:SYMBOL"),                 # a bare symbol is ambiguous
    ({"nowhere:USDT": "100"}, "no configured chain"),
    ({"six:USDT": "0.0000001"}, "six:USDT"),          # more decimals than the asset has
    ({"six:USDT": ["100"]}, "decimal string"),
    ({"six:USDT": True}, "decimal string"),
])
def test_a_bad_limit_stops_the_start_naming_its_key(limits: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(_raw(limits), environ={})
    assert words in str(caught.value)
