"""The balances answer is assembled from per-asset JSON pieces: it must be byte for byte what
json.dumps writes for the same rows, whatever the assets' names and the amounts."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from teller.assets import Asset, AssetRegistry
from teller.http import SERVICES, Services
from teller.http.account import balances
from teller.http.auth import Authenticator
from teller.http.metrics import HttpMetrics
from teller.http.middleware import USER_ID
from teller.money import format_amount
from teller.storage import Balance
from tests.fixtures.http import settings_for_tests

_SETTINGS = settings_for_tests()


class _Ledger:
    def __init__(self, rows: list[Balance]) -> None:
        self.rows = rows

    async def balances(self, user_id: int) -> list[Balance]:
        assert user_id == 7
        return self.rows


def _asset(i: int, symbol: str, chain: str | None, decimals: int) -> Asset:
    return Asset(code=f"code-{i}", symbol=symbol, chain=chain, decimals=decimals, contract=None,
                 min_withdrawal_minor=0, withdrawal_fee_minor=0, confirmations=None)


def _answer(assets: list[Asset], rows: list[Balance]) -> web.Response:
    services = Services(settings=_SETTINGS, store=SimpleNamespace(ledger=_Ledger(rows)), assets=AssetRegistry(assets),
                        auth=Authenticator(_SETTINGS.auth), metrics=HttpMetrics())
    app = web.Application()
    app[SERVICES] = services
    request = make_mocked_request("GET", "/api/v1/balances", app=app)
    request[USER_ID] = 7
    return asyncio.run(balances(request))  # type: ignore[arg-type]


_ASSETS = st.lists(
    st.tuples(st.text(min_size=1, max_size=8), st.none() | st.text(min_size=1, max_size=8), st.integers(0, 30)),
    min_size=1, max_size=4,
)
_MINOR = st.integers(min_value=-(2**256), max_value=2**256)


@settings(max_examples=200, deadline=None)
@given(specs=_ASSETS, amounts=st.lists(st.tuples(st.booleans(), _MINOR, _MINOR), min_size=4, max_size=4))
def test_balances_are_what_json_dumps_writes(specs: list[tuple[str, str | None, int]],
                                             amounts: list[tuple[bool, int, int]]) -> None:
    assets = [_asset(i, symbol, chain, decimals) for i, (symbol, chain, decimals) in enumerate(specs)]
    rows = [Balance(asset=a.code, available_minor=available, held_minor=held)
            for a, (touched, available, held) in zip(assets, amounts) if touched]
    by_code = {r.asset: r for r in rows}
    expected = {"balances": [
        {"asset": a.symbol, "chain": a.chain, "decimals": a.decimals,
         "available": format_amount(by_code[a.code].available_minor if a.code in by_code else 0, a.decimals),
         "held": format_amount(by_code[a.code].held_minor if a.code in by_code else 0, a.decimals)}
        for a in assets
    ]}
    response = _answer(assets, rows)
    assert response.body == json.dumps(expected).encode()
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
