"""IRT payment clients: card and Sheba validation, the Paystar client, statements.

The sandbox (a fake for tests and dev mode) is imported from ``teller.payments.sandbox`` directly.
"""

from teller.payments.banks import BANKS, Bank
from teller.payments.cards import Card, card_bank, card_hash, luhn_valid, mask_card, normalize_card, parse_card
from teller.payments.iban import build_iban, iban_bank, iban_check_valid, mask_iban, normalize_iban, parse_iban
from teller.payments.paystar import PaystarClient
from teller.payments.paystar_wire import CardIbanInfo, IbanInfo
from teller.payments.statement import HttpStatementSource, StatementLine, StatementSource

__all__ = [
    "BANKS",
    "Bank",
    "Card",
    "CardIbanInfo",
    "HttpStatementSource",
    "IbanInfo",
    "PaystarClient",
    "StatementLine",
    "StatementSource",
    "build_iban",
    "card_bank",
    "card_hash",
    "iban_bank",
    "iban_check_valid",
    "luhn_valid",
    "mask_card",
    "mask_iban",
    "normalize_card",
    "normalize_iban",
    "parse_card",
    "parse_iban",
]
