"""A deposit's identity is what its transaction did, never where it landed: the same transaction at any
block and log index gives the same (tx hash, asset, address, ordinal) names and the same credit keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from teller.actors.deposit_scan import ChainAssets, find_tokens
from teller.chain.types import TransferLog
from teller.storage.ledger_keys import deposit_credit_key, legacy_deposit_credit_key

CHAIN = "devnet"
USDT, DAI = "0x" + "11" * 20, "0x" + "22" * 20
ALICE, BOB, STRANGER = "0x" + "a1" * 20, "0x" + "b2" * 20, "0x" + "c3" * 20
ASSETS = ChainAssets(chain=CHAIN, native_symbol="ETH", native_decimals=18,
                     tokens={USDT: ("USDT", 6), DAI: ("DAI", 18)}, confirmations=3)
ADDRESSES = {ALICE: 1, BOB: 2}

# One transaction's transfers, in execution order: (token, to, amount).
TRANSFERS = [(USDT, ALICE, 5), (USDT, STRANGER, 9), (DAI, ALICE, 7), (USDT, ALICE, 0), (USDT, ALICE, 3),
             (USDT, BOB, 4), (USDT, ALICE, 8)]


def _logs(tx: str, transfers: list[tuple[str, str, int]], *, block: int, first_index: int,
          removed: int | None = None) -> list[TransferLog]:
    return [TransferLog(token=token, from_address=STRANGER, to_address=to, amount_minor=amount, tx_hash=tx,
                        log_index=first_index + i, block_number=block, block_hash=f"0xb{block}", transaction_index=0,
                        removed=i == removed)
            for i, (token, to, amount) in enumerate(transfers)]


def _names(found: list) -> list[tuple]:
    return sorted((d.identity, d.amount_minor, d.user_id) for d in found)


def test_ordinals_count_each_token_and_recipient_apart_and_skip_what_is_no_deposit() -> None:
    found = find_tokens(_logs("0xt", TRANSFERS, block=5, first_index=0), {5: "0xb5"}, ADDRESSES, ASSETS)
    assert [(d.asset, d.address, d.ordinal, d.amount_minor, d.log_index) for d in found] == [
        ("USDT", ALICE, 0, 5, 0), ("DAI", ALICE, 0, 7, 2), ("USDT", ALICE, 1, 3, 4), ("USDT", BOB, 0, 4, 5),
        ("USDT", ALICE, 2, 8, 6)]


@given(st.integers(0, 500), st.integers(1, 10**6), st.permutations(range(3)))
def test_the_same_transaction_anywhere_has_the_same_names(first_index: int, block: int, order: list[int]) -> None:
    """Re-mined at another height, after other transactions' logs, with the node answering in any order."""
    here = find_tokens(_logs("0xt", TRANSFERS, block=5, first_index=1), {5: "0xb5"}, ADDRESSES, ASSETS)
    logs = _logs("0xt", TRANSFERS, block=block, first_index=first_index)
    others = _logs("0xu", [(USDT, ALICE, 1)], block=block, first_index=first_index + len(TRANSFERS))
    chunks = [logs[:3], logs[3:], others]
    shuffled = [log for i in order for log in chunks[i]]
    there = find_tokens(shuffled, {block: f"0xb{block}"}, ADDRESSES, ASSETS)
    assert _names([d for d in there if d.tx_hash == "0xt"]) == _names(here)
    keys = {deposit_credit_key(CHAIN, d.tx_hash, d.asset, d.address, d.ordinal) for d in here}
    assert len(keys) == len(here)  # one key per transfer


def test_a_removed_or_repeated_log_is_not_a_transfer() -> None:
    logs = _logs("0xt", [(USDT, ALICE, 5), (USDT, ALICE, 6)], block=5, first_index=0, removed=0)
    found = find_tokens(logs + logs[1:], {5: "0xb5"}, ADDRESSES, ASSETS)
    assert [(d.ordinal, d.amount_minor) for d in found] == [(0, 6)]


def test_new_keys_never_equal_a_legacy_key() -> None:
    tx = "0x" + "ab" * 32
    new = deposit_credit_key(CHAIN, tx, "USDT", ALICE, 0)
    assert new == f"deposit:{CHAIN}:{tx}:USDT:{ALICE}:0"
    assert new != legacy_deposit_credit_key(CHAIN, tx, 0)
    assert legacy_deposit_credit_key(CHAIN, tx, -1) == f"deposit:{CHAIN}:{tx}:-1"
