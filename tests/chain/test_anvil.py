"""The anvil process and the dev-chain levers; the committed token artifact matches its source."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from teller.chain.anvil import AnvilProcess, AnvilStartError
from teller.chain.devchain import DEMO_TOKEN_ARTIFACT, FAUCET_ADDRESS, DevChainError
from tests.fixtures.chain import DevNet

StartAnvil = Callable[..., AnvilProcess]


def test_the_committed_artifact_was_built_from_the_committed_source() -> None:
    artifact = json.loads(DEMO_TOKEN_ARTIFACT.read_text())
    source = (DEMO_TOKEN_ARTIFACT.parent / "DemoToken.sol").read_bytes()
    assert artifact["sourceSha256"] == hashlib.sha256(source).hexdigest(), \
        "DemoToken.sol changed: run `node teller/chain/contracts/build.js` and commit DemoToken.json"
    names = {item.get("name") for item in artifact["abi"]}
    assert {"transfer", "transferFrom", "approve", "balanceOf", "allowance", "mint", "batchTransfer",
            "setBlocked", "setPaused", "Transfer", "Approval"} <= names
    assert artifact["bytecode"].startswith("0x60")


def test_start_answers_and_stop_cleans_up(start_anvil: StartAnvil) -> None:
    anvil = start_anvil(chain_id=777)
    pid, cache_dir = anvil.pid, anvil._tmpdir
    assert anvil.running and anvil.url.startswith("http://127.0.0.1:")
    assert anvil.dev.rpc("eth_chainId") == hex(777)
    assert cache_dir is not None and os.path.isdir(cache_dir)
    anvil.stop()
    anvil.stop()  # idempotent
    assert not anvil.running and not os.path.exists(cache_dir)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_two_chains_side_by_side_and_one_dying(start_anvil: StartAnvil) -> None:
    first, second = start_anvil(chain_id=1001), start_anvil(chain_id=1002)
    assert first.port != second.port
    first.dev.mine(5)
    assert (first.dev.block_number(), second.dev.block_number()) == (5, 0)
    first.kill()
    with pytest.raises(DevChainError):
        first.dev.block_number()
    second.dev.mine()
    assert second.dev.block_number() == 1


def test_a_taken_port_is_reported(start_anvil: StartAnvil) -> None:
    taken = start_anvil(chain_id=1003)
    with pytest.raises(AnvilStartError):
        AnvilProcess(chain_id=1004, port=taken.port).start()


def test_automine_off_waits_for_mine(start_anvil: StartAnvil) -> None:
    anvil = start_anvil(chain_id=1005, automine=False)
    dev = anvil.dev
    token = dev.deploy_demo_token()  # mines its own block when nothing else does
    tx_hash = dev.send_native(to="0x" + "44" * 20, amount_wei=5, wait=False)
    assert dev.rpc("eth_getTransactionReceipt", tx_hash) is None
    dev.mine()
    assert dev.wait_receipt(tx_hash)["status"] == "0x1"
    assert dev.token_balance(token, FAUCET_ADDRESS) == 0


def test_token_levers(devnet: DevNet) -> None:
    dev, token = devnet.dev, devnet.token
    to = devnet.wallet.address(30).lower()
    dev.mint(token, to=to, amount_minor=100)
    assert dev.token_balance(token, to) == 100
    dev.set_paused(token, True)
    with pytest.raises(DevChainError, match="reverted"):
        dev.send_token(token, to=to, amount_minor=1)
    dev.set_paused(token, False)
    dev.send_token(token, to=to, amount_minor=1)
    assert dev.token_balance(token, to) == 101


def test_snapshot_revert_rolls_back_balances(devnet: DevNet) -> None:
    dev = devnet.dev
    to = devnet.wallet.address(31)
    before = dev.balance_wei(to)
    snapshot = dev.snapshot()
    dev.send_native(to=to, amount_wei=10**18)
    assert dev.balance_wei(to) == before + 10**18
    dev.revert(snapshot)
    assert dev.balance_wei(to) == before
