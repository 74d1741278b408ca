"""The Iranian bank registry: names, Sheba (IBAN) bank codes and card BINs, in one table.

Sources: the Central Bank of Iran's Sheba bank identifiers (digits 5-7 of an ``IR`` IBAN) and the
Shetab card prefixes (the first six digits of a card) as the banks publish them. Banks merged into
Sepah in 2019-2020 (Ansar, Ghavamin, Hekmat Iranian, Kosar, Mehr Eghtesad) keep their old BINs on
cards still in circulation, so those BINs name Sepah. Blu is Saman's digital bank: its cards carry
Saman's BIN and its accounts Saman's code. The table is informational, not a gate: an unknown BIN or
bank code is valid and names no bank (the provider's inquiry is what says a card exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

__all__ = ["Bank", "BANKS", "BANK_BY_BIN", "BANK_BY_IBAN_CODE"]


@dataclass(frozen=True, slots=True)
class Bank:
    name: str
    iban_code: str  # three digits, positions 5-7 of the IBAN
    bins: tuple[str, ...] = ()  # six-digit card prefixes


BANKS: tuple[Bank, ...] = (
    Bank("Central Bank of Iran", "010", ("636795",)),
    Bank("Sanat va Madan", "011", ("627961",)),
    Bank("Mellat", "012", ("610433", "991975")),
    Bank("Refah", "013", ("589463",)),
    Bank("Maskan", "014", ("628023",)),
    Bank("Sepah", "015", ("589210", "627381", "639599", "636949", "505801", "639370")),
    Bank("Keshavarzi", "016", ("603770", "639217")),
    Bank("Melli", "017", ("603799",)),
    Bank("Tejarat", "018", ("627353", "585983")),
    Bank("Saderat", "019", ("603769",)),
    Bank("Tose'e Saderat", "020", ("627648",)),
    Bank("Post Bank", "021", ("627760",)),
    Bank("Tose'e Ta'avon", "022", ("502908",)),
    Bank("Tose'e Credit Institution", "051", ("628157",)),
    Bank("Karafarin", "053", ("627488",)),
    Bank("Parsian", "054", ("622106", "627884", "639194")),
    Bank("Eghtesad Novin", "055", ("627412",)),
    Bank("Saman", "056", ("621986",)),
    Bank("Pasargad", "057", ("502229", "639347")),
    Bank("Sarmayeh", "058", ("639607",)),
    Bank("Sina", "059", ("639346",)),
    Bank("Mehr Iran", "060", ("606373",)),
    Bank("Shahr", "061", ("502806",)),
    Bank("Ayandeh", "062", ("636214",)),
    Bank("Gardeshgari", "064", ("505416",)),
    Bank("Dey", "066", ("502938",)),
    Bank("Iran Zamin", "069", ("505785",)),
    Bank("Resalat", "070", ("504172",)),
    Bank("Melal Credit Institution", "075", ("606256",)),
    Bank("Khavarmianeh", "078", ("505809",)),
    Bank("Noor Credit Institution", "080", ("507677",)),
)

BANK_BY_BIN: Mapping[str, Bank] = MappingProxyType({b: bank for bank in BANKS for b in bank.bins})
BANK_BY_IBAN_CODE: Mapping[str, Bank] = MappingProxyType({bank.iban_code: bank for bank in BANKS})

# Asserted at import: a BIN or code listed twice would silently name the wrong bank.
assert len(BANK_BY_BIN) == sum(len(bank.bins) for bank in BANKS)
assert len(BANK_BY_IBAN_CODE) == len(BANKS)
