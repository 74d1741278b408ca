"""Dev-chain levers over anvil's JSON-RPC: mining, snapshots, automine, a faucet, the demo ERC-20.

Dev mode and tests only. Synchronous (urllib, loopback, milliseconds per call) so that session-scoped test
fixtures and start-up code can use it outside an event loop; from inside a loop, a call blocks it for a
few milliseconds, or wrap it in ``asyncio.to_thread``.

Money leaves from the *faucet*, an address that no mnemonic derives (so it can never collide with the hot
wallet's nonces or a user's deposit address): anvil funds and impersonates it, and it deploys and owns the
demo token, so it can mint.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from eth_utils import keccak

from teller.chain.erc20 import encode_balance_of, encode_transfer

__all__ = ["DevChain", "DevChainError", "FAUCET_ADDRESS", "DEMO_TOKEN_ARTIFACT", "load_demo_token_artifact"]

FAUCET_ADDRESS = "0x" + keccak(text="teller dev faucet")[-20:].hex()
FAUCET_BALANCE_WEI = 10**30
DEMO_TOKEN_ARTIFACT = Path(__file__).resolve().parent / "contracts" / "DemoToken.json"
RPC_TIMEOUT_S = 10.0
# anvil_mine's cost grows with the state: ~15 ms a block with 2,500 token holders, and more past it
MINE_TIMEOUT_PER_BLOCK_S = 0.2
RECEIPT_WAIT_S = 10.0
RECEIPT_POLL_INTERVAL_S = 0.02
BATCH_RECIPIENTS_MAX = 500
_ids = itertools.count(1)


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _word(value: int | str | bool) -> bytes:
    if isinstance(value, str):  # an address
        return bytes(12) + bytes.fromhex(value.removeprefix("0x").lower())
    return int(value).to_bytes(32, "big")


class DevChainError(RuntimeError):
    """An anvil call failed (a JSON-RPC error, a reverted dev transaction, no receipt in time)."""


def load_demo_token_artifact() -> dict[str, Any]:
    with open(DEMO_TOKEN_ARTIFACT, encoding="utf-8") as fh:
        artifact: dict[str, Any] = json.load(fh)
    return artifact


class DevChain:
    """Levers on an anvil node at ``url``. Transaction helpers return the tx hash (lowercase hex); with
    ``wait=True`` (the default) they first wait for a successful receipt, which needs automine or a block
    time. With automine off, pass ``wait=False`` and ``mine()`` yourself."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._faucet_ready = False

    # -- raw access -------------------------------------------------------------------------------
    def rpc(self, method: str, *params: Any, timeout_s: float = RPC_TIMEOUT_S) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": list(params)})
        request = urllib.request.Request(self.url, data=body.encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                answer = json.loads(resp.read())
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise DevChainError(f"{method}: {exc}") from exc
        if "error" in answer:
            raise DevChainError(f"{method}: {answer['error'].get('message', answer['error'])}")
        return answer.get("result")

    # -- the chain's clock --------------------------------------------------------------------------
    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks), timeout_s=max(RPC_TIMEOUT_S, blocks * MINE_TIMEOUT_PER_BLOCK_S))

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """Roll the chain back to ``snapshot_id`` (which is consumed, as anvil deletes it)."""
        if self.rpc("evm_revert", snapshot_id) is not True:
            raise DevChainError(f"evm_revert: unknown snapshot {snapshot_id}")

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", enabled)

    def set_interval_mining(self, interval_s: int) -> None:
        self.rpc("evm_setIntervalMining", interval_s)

    def reorg(self, depth: int) -> None:
        """Replace the last ``depth`` blocks with empty ones of different hashes (``anvil_reorg``)."""
        self.rpc("anvil_reorg", depth, [])

    # -- balances and the faucet ---------------------------------------------------------------------
    def balance_wei(self, address: str) -> int:
        return int(self.rpc("eth_getBalance", address, "latest"), 16)

    def set_balance(self, address: str, amount_wei: int) -> None:
        self.rpc("anvil_setBalance", address, hex(amount_wei))

    def send_native(self, *, to: str, amount_wei: int, wait: bool = True) -> str:
        """A real transfer transaction from the faucet (so a watcher sees it in a block)."""
        return self._send(to=to, value_wei=amount_wei, data=b"", wait=wait)

    def wait_receipt(self, tx_hash: str, *, timeout_s: float = RECEIPT_WAIT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                if receipt.get("status") != "0x1":
                    raise DevChainError(f"dev transaction {tx_hash} reverted")
                return dict(receipt)
            if time.monotonic() > deadline:
                raise DevChainError(f"no receipt for {tx_hash} within {timeout_s} s (automine off?)")
            time.sleep(RECEIPT_POLL_INTERVAL_S)

    # -- the demo token ------------------------------------------------------------------------------
    def deploy_demo_token(self) -> str:
        """Deploy DemoToken (USDT, 6 decimals) owned by the faucet; returns its lowercase address."""
        artifact = load_demo_token_artifact()
        tx_hash = self._send(to=None, value_wei=0, data=bytes.fromhex(artifact["bytecode"][2:]), wait=False)
        if self.rpc("eth_getTransactionReceipt", tx_hash) is None and not self._automines():
            self.mine()
        receipt = self.wait_receipt(tx_hash)
        return str(receipt["contractAddress"]).lower()

    def mint(self, token: str, *, to: str, amount_minor: int, wait: bool = True) -> str:
        data = _selector("mint(address,uint256)") + _word(to) + _word(amount_minor)
        return self._send(to=token, value_wei=0, data=data, wait=wait)

    def send_token(self, token: str, *, to: str, amount_minor: int, wait: bool = True) -> str:
        """A token transfer from the faucet's balance (mint to the faucet first)."""
        return self._send(to=token, value_wei=0, data=encode_transfer(to, amount_minor), wait=wait)

    def batch_send_token(self, token: str, transfers: list[tuple[str, int]], *, wait: bool = True) -> str:
        """One transaction, one Transfer log per ``(to, amount_minor)``, in order, from the faucet."""
        if not 0 < len(transfers) <= BATCH_RECIPIENTS_MAX:
            raise ValueError(f"1..{BATCH_RECIPIENTS_MAX} transfers per batch")
        count = len(transfers)
        head = _selector("batchTransfer(address[],uint256[])") + _word(64) + _word(64 + 32 * (count + 1))
        to_words = _word(count) + b"".join(_word(to) for to, _ in transfers)
        amount_words = _word(count) + b"".join(_word(amount) for _, amount in transfers)
        return self._send(to=token, value_wei=0, data=head + to_words + amount_words, wait=wait)

    def set_blocked(self, token: str, account: str, blocked: bool) -> None:
        """Transfers from or to ``account`` revert while blocked."""
        self._send(to=token, value_wei=0, data=_selector("setBlocked(address,bool)") + _word(account)
                   + _word(blocked), wait=True)

    def set_paused(self, token: str, paused: bool) -> None:
        self._send(to=token, value_wei=0, data=_selector("setPaused(bool)") + _word(paused), wait=True)

    def token_balance(self, token: str, owner: str) -> int:
        result = self.rpc("eth_call", {"to": token, "data": "0x" + encode_balance_of(owner).hex()}, "latest")
        return int(result, 16)

    # -- internals -----------------------------------------------------------------------------------
    def _automines(self) -> bool:
        return bool(self.rpc("anvil_getAutomine"))

    def _ensure_faucet(self) -> None:
        if not self._faucet_ready:
            self.rpc("anvil_setBalance", FAUCET_ADDRESS, hex(FAUCET_BALANCE_WEI))
            self.rpc("anvil_impersonateAccount", FAUCET_ADDRESS)
            self._faucet_ready = True

    def _send(self, *, to: str | None, value_wei: int, data: bytes, wait: bool) -> str:
        self._ensure_faucet()
        tx: dict[str, Any] = {"from": FAUCET_ADDRESS, "value": hex(value_wei), "data": "0x" + data.hex()}
        if to is not None:
            tx["to"] = to
        tx_hash = str(self.rpc("eth_sendTransaction", tx)).lower()
        if wait:
            self.wait_receipt(tx_hash)
        return tx_hash
