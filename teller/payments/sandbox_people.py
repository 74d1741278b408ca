"""The Paystar sandbox's population: a few people, each with a national code, a mobile, cards and IBANs.

The info-matching inquiries answer from here: Shahkar matches a national code and a mobile of the
same person; a card or an IBAN matches the national code of the person holding it. A card or IBAN
of nobody here is a stranger's (``is_matched: false``); one the bank does not know at all (unknown
BIN or bank code, failed checksum) is Paystar's "invalid input" (status 10).

All values are synthetic (check digits computed, mobiles in the 0912 000 00xx range); ``DEV_PERSON``
is who dev mode's user is, printed by dev mode so a newcomer can walk the IRT flow.
"""

from __future__ import annotations

from dataclasses import dataclass

from teller.payments.banks import BANK_BY_BIN, BANK_BY_IBAN_CODE
from teller.payments.cards import luhn_valid
from teller.payments.iban import build_iban
from teller.payments.national_code import national_code_check_digit

__all__ = ["Person", "PEOPLE", "DEV_PERSON", "make_person", "sandbox_card", "sandbox_national_code"]


@dataclass(frozen=True, slots=True)
class Person:
    national_code: str
    mobile: str
    name: str
    cards: tuple[str, ...]
    ibans: tuple[str, ...]  # accounts held besides the cards' own accounts

    def __repr__(self) -> str:  # synthetic, but a Person must look like the real thing in a log: masked
        return f"Person({self.name!r}, cards={len(self.cards)}, ibans={len(self.ibans)})"


def sandbox_national_code(serial: int) -> str:
    """A valid national code for a small serial (never ten equal digits)."""
    head = f"{serial:03d}555000"[:9]
    return head + str(national_code_check_digit(head))


def sandbox_card(bin6: str, serial: int) -> str:
    """A Luhn-valid card of a known BIN."""
    assert bin6 in BANK_BY_BIN, "sandbox cards use BINs the bank table knows"
    body = bin6 + f"{serial:09d}"
    return next(body + str(c) for c in range(10) if luhn_valid(body + str(c)))


def make_person(serial: int, name: str, *, bin6: str = "603799", iban_bank_code: str = "012") -> Person:
    assert iban_bank_code in BANK_BY_IBAN_CODE
    return Person(
        national_code=sandbox_national_code(serial),
        mobile=f"0912000{serial:04d}",
        name=name,
        cards=(sandbox_card(bin6, 700_000 + serial),),
        ibans=(build_iban(bank_code=iban_bank_code, account=f"{serial:019d}"),),
    )


PEOPLE: tuple[Person, ...] = (
    make_person(1, "Sara Ahmadi"),
    make_person(2, "Reza Karimi", bin6="610433", iban_bank_code="017"),
    make_person(3, "Maryam Hosseini", bin6="589210"),
    make_person(4, "Ali Rezaei", bin6="627353", iban_bank_code="056"),
)
DEV_PERSON = PEOPLE[0]
