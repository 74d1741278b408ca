"""EVM chain access: the per-chain client, ERC-20 encoding, HD keys, signing, and the dev chain (anvil).

Addresses inside these types are lowercase hex; ``parse_address`` (user input) answers checksummed.
"""

from teller.chain.address import parse_address
from teller.chain.client import ChainClient
from teller.chain.erc20 import (
    TRANSFER_TOPIC,
    decode_transfer_calldata,
    decode_transfer_log,
    encode_transfer,
)
from teller.chain.keys import HdWallet, KeyLoadError, load_keystore, write_keystore
from teller.chain.signing import (
    NATIVE_TRANSFER_GAS,
    sign_eip1559,
    sign_native_transfer,
    sign_token_transfer,
)
from teller.chain.types import (
    Block,
    FeeSuggestion,
    Receipt,
    SendOutcome,
    SendResult,
    SignedTx,
    TransferLog,
    TxSummary,
)

__all__ = [
    "Block",
    "ChainClient",
    "FeeSuggestion",
    "HdWallet",
    "KeyLoadError",
    "NATIVE_TRANSFER_GAS",
    "Receipt",
    "SendOutcome",
    "SendResult",
    "SignedTx",
    "TRANSFER_TOPIC",
    "TransferLog",
    "TxSummary",
    "decode_transfer_calldata",
    "decode_transfer_log",
    "encode_transfer",
    "load_keystore",
    "parse_address",
    "sign_eip1559",
    "sign_native_transfer",
    "sign_token_transfer",
    "write_keystore",
]
