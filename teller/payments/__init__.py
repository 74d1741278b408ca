"""IRT payment clients: card, Sheba and national-code validation, card-hash keys, the Paystar client,
statements, and the registry binding identities, cards and IBANs.

The sandbox (a fake for tests and dev mode) is imported from ``teller.payments.sandbox`` directly.
"""

from teller.payments.banks import BANKS, Bank
from teller.payments.card_keys import CardKeys
from teller.payments.cards import Card, card_bank, card_hash, luhn_valid, mask_card, normalize_card, parse_card
from teller.payments.iban import build_iban, iban_bank, iban_check_valid, mask_iban, normalize_iban, parse_iban
from teller.payments.paystar import PaystarClient
from teller.payments.national_code import mask_mobile, mask_national_code, parse_mobile, parse_national_code
from teller.payments.paystar_wire import CardIbanInfo, IbanInfo
from teller.payments.registry import ContactBook, OwnerRegistry
from teller.payments.statement import HttpStatementSource, StatementLine, StatementSource

__all__ = [
    "BANKS",
    "Bank",
    "Card",
    "CardKeys",
    "ContactBook",
    "OwnerRegistry",
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
    "mask_mobile",
    "mask_national_code",
    "parse_mobile",
    "parse_national_code",
    "mask_iban",
    "normalize_card",
    "normalize_iban",
    "parse_card",
    "parse_iban",
]
