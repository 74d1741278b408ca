"""The assets Teller holds, derived once from settings: ledger codes, display units, chains.

A ledger asset code is ``"{chain}:{symbol}"`` for chain assets (``"ethereum:USDT"``) and ``"IRT"``
for Iranian money, so that the same symbol on two chains never shares a balance.

``IRT`` is the toman, as in Iranian payment APIs (``IRR`` is the rial), and 1 toman = 10 rials. Banks and
Paystar report rials, so the ledger keeps IRT exact with the rial as its minor unit: ``IRT_DECIMALS = 1``.
A line of 1,500,005 rials is ``amount_minor`` 1500005, shown as "150000.5" tomans; nothing is rounded.
This constant is the one source of IRT's decimals: everything that formats or parses IRT reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from teller.config import Settings
from teller.errors import UnknownAsset, UnknownChain

__all__ = ["Asset", "AssetRegistry", "IRT_CODE", "IRT_DECIMALS"]

IRT_CODE = "IRT"
IRT_DECIMALS = 1  # the toman, in rials: 1 toman = 10 rials (module docstring)


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    symbol: str
    chain: str | None
    decimals: int
    contract: str | None
    min_withdrawal_minor: int
    withdrawal_fee_minor: int
    confirmations: int | None

    @property
    def is_native(self) -> bool:
        return self.chain is not None and self.contract is None


class AssetRegistry:
    def __init__(self, assets: list[Asset]) -> None:
        self._by_code = {a.code: a for a in assets}
        assert len(self._by_code) == len(assets), "asset codes must be unique"

    @classmethod
    def from_settings(cls, settings: Settings) -> "AssetRegistry":
        assets = [
            Asset(
                code=f"{chain.name}:{a.symbol}", symbol=a.symbol, chain=chain.name, decimals=a.decimals,
                contract=a.contract, min_withdrawal_minor=a.min_withdrawal_minor,
                withdrawal_fee_minor=a.withdrawal_fee_minor, confirmations=chain.confirmations,
            )
            for chain in settings.chains
            for a in chain.assets
        ]
        if settings.irt is not None:
            assets.append(Asset(
                code=IRT_CODE, symbol="IRT", chain=None, decimals=IRT_DECIMALS, contract=None,
                min_withdrawal_minor=0, withdrawal_fee_minor=0, confirmations=None,
            ))
        return cls(assets)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_code.values())

    def get(self, code: str) -> Asset | None:
        return self._by_code.get(code)

    def by_code(self, code: str) -> Asset:
        asset = self._by_code.get(code)
        if asset is None:
            raise UnknownAsset(f"unknown asset {code!r}")
        return asset

    def on_chain(self, chain: str, symbol: str) -> Asset:
        if not any(a.chain == chain for a in self._by_code.values()):
            raise UnknownChain(f"unknown chain {chain!r}")
        return self.by_code(f"{chain}:{symbol}")

    def chains(self) -> list[str]:
        return sorted({a.chain for a in self._by_code.values() if a.chain is not None})

    def by_contract(self, chain: str, contract: str) -> Asset | None:
        contract = contract.lower()
        return next(
            (a for a in self._by_code.values() if a.chain == chain and a.contract and a.contract.lower() == contract),
            None,
        )
