"""``WorldState``: the simulated chain's accounts and tokens, and the execution of one transaction on them.

Native balances and nonces, and ERC-20 tokens modelled natively: ``transfer(to, amount)`` moves the amount
and emits the standard Transfer log (topic0, from and to as 32-byte words, the amount as one word of
data); a transfer above the balance reverts (status 0, no log), as does any other call to the token and
any coin sent to it; a gas limit below what the call needs runs out of gas (status 0, all gas used).
Gas: 21,000 plus calldata for everything, ``TOKEN_TRANSFER_GAS`` more for a token transfer. The sender
pays ``gas_used x effective price``; the base fee part is burnt, the tip goes to ``COINBASE``.

Every change made while executing is written to the block's journal as a delta, so a reorg undoes
exactly what the block did, and a driver's ``fund`` or ``mint`` made meanwhile survives it.
"""

from __future__ import annotations

from eth_utils import keccak

from teller.chain.erc20 import TRANSFER_TOPIC, address_topic, decode_transfer_calldata
from tests.simulation.evm_types import SimBlock, SimLog, SimReceipt, SimTx, intrinsic_gas

__all__ = ["COINBASE", "TOKEN_TRANSFER_GAS", "WorldState"]

TOKEN_TRANSFER_GAS = 30_000  # execution beyond the intrinsic gas: a warm OpenZeppelin transfer is ~29k
TOKEN_REVERT_GAS = 2_500
COINBASE = "0x" + keccak(text="teller sim coinbase")[-20:].hex()
_BALANCE_OF = bytes.fromhex("70a08231")


class WorldState:
    def __init__(self) -> None:
        self._balances: dict[str, int] = {}
        self._nonces: dict[str, int] = {}
        self._tokens: dict[str, dict[str, int]] = {}  # token -> holder -> amount

    # -- the driver's changes, outside any block ------------------------------------------------------
    def fund(self, address: str, amount_wei: int) -> None:
        address = address.lower()
        self._balances[address] = self._balances.get(address, 0) + amount_wei

    def add_token(self, token: str) -> None:
        self._tokens.setdefault(token.lower(), {})

    def mint(self, token: str, address: str, amount_minor: int) -> None:
        holders = self._tokens[token.lower()]
        holders[address.lower()] = holders.get(address.lower(), 0) + amount_minor

    # -- reads ---------------------------------------------------------------------------------------
    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(self._tokens)

    def balance(self, address: str) -> int:
        return self._balances.get(address.lower(), 0)

    def token_balance(self, token: str, owner: str) -> int:
        return self._tokens.get(token.lower(), {}).get(owner.lower(), 0)

    def nonce(self, address: str) -> int:
        return self._nonces.get(address.lower(), 0)

    # -- execution -----------------------------------------------------------------------------------
    def execute(self, block: SimBlock, tx: SimTx, *, index: int, first_log_index: int) -> SimReceipt:
        """Run ``tx`` as the ``index``-th transaction of ``block`` (whose ``gas_used`` is the gas so far)."""
        price = tx.price_at(block.base_fee_per_gas_wei)
        gas_used, succeeded, logs = intrinsic_gas(tx.data), True, ()
        if tx.to is not None and tx.to in self._tokens:
            call = decode_transfer_calldata(tx.data)
            if tx.value_wei or (call is None and tx.data[:4] != _BALANCE_OF):
                gas_used, succeeded = gas_used + TOKEN_REVERT_GAS, False  # not payable / unknown function
            elif call is not None:
                recipient, amount = call
                if gas_used + TOKEN_TRANSFER_GAS > tx.gas:
                    gas_used, succeeded = tx.gas, False  # out of gas
                elif self.token_balance(tx.to, tx.sender) < amount:
                    gas_used, succeeded = gas_used + TOKEN_REVERT_GAS, False
                else:
                    gas_used += TOKEN_TRANSFER_GAS
                    self._move_token(block, tx.to, tx.sender, -amount)
                    self._move_token(block, tx.to, recipient, amount)
                    logs = (SimLog(address=tx.to, topics=(TRANSFER_TOPIC, address_topic(tx.sender),
                                                          address_topic(recipient)),
                                   data="0x" + amount.to_bytes(32, "big").hex(), log_index=first_log_index,
                                   tx_index=index, tx_hash=tx.tx_hash),)
        elif tx.value_wei and tx.to is not None:
            self._move(block, tx.sender, -tx.value_wei)
            self._move(block, tx.to, tx.value_wei)
        self._move(block, tx.sender, -gas_used * price)
        self._move(block, COINBASE, gas_used * (price - block.base_fee_per_gas_wei))
        self._nonces[tx.sender] = self.nonce(tx.sender) + 1
        block.journal.append(("nonce", tx.sender, 1))
        return SimReceipt(tx=tx, tx_index=index, succeeded=succeeded, gas_used=gas_used,
                          cumulative_gas_used=block.gas_used + gas_used, effective_gas_price_wei=price,
                          logs=logs)

    def undo(self, block: SimBlock) -> None:
        """Take back everything ``block`` did (its journal, newest first)."""
        for kind, key, delta in reversed(block.journal):
            if kind == "balance":
                self._balances[key] -= delta  # type: ignore[index]
            elif kind == "nonce":
                self._nonces[key] -= delta  # type: ignore[index]
            else:
                token, owner = key  # type: ignore[misc]
                self._tokens[token][owner] -= delta

    def _move(self, block: SimBlock, address: str, delta_wei: int) -> None:
        self._balances[address] = self._balances.get(address, 0) + delta_wei
        block.journal.append(("balance", address, delta_wei))

    def _move_token(self, block: SimBlock, token: str, owner: str, delta: int) -> None:
        holders = self._tokens[token]
        holders[owner] = holders.get(owner, 0) + delta
        block.journal.append(("token", (token, owner), delta))
