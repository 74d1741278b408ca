from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from teller.errors import InvalidCard
from teller.payments.banks import BANKS
from teller.payments.cards import card_hash, luhn_valid, mask_card, normalize_card, parse_card

PERSIAN = "۰۱۲۳۴۵۶۷۸۹"
ARABIC = "٠١٢٣٤٥٦٧٨٩"
SECRET = b"s" * 32


def with_luhn(prefix15: str) -> str:
    """Append the Luhn check digit to 15 digits."""
    for d in "0123456789":
        if luhn_valid(prefix15 + d):
            return prefix15 + d
    raise AssertionError


digits15 = st.text(alphabet="0123456789", min_size=15, max_size=15)
valid_cards = digits15.map(with_luhn)


def test_known_card_parses_with_bank() -> None:
    card = parse_card("6037-9912 3456 7893")
    assert card.number == "6037991234567893"
    assert card.bank == "Melli"
    assert card.masked == "603799******7893"


@pytest.mark.parametrize(
    ("prefix", "bank"),
    [("603799", "Melli"), ("610433", "Mellat"), ("603769", "Saderat"), ("627353", "Tejarat"),
     ("589210", "Sepah"), ("502229", "Pasargad"), ("621986", "Saman"), ("622106", "Parsian"),
     ("603770", "Keshavarzi"), ("628023", "Maskan"), ("589463", "Refah"), ("627412", "Eghtesad Novin"),
     ("636214", "Ayandeh"), ("639346", "Sina"), ("502806", "Shahr"), ("627760", "Post Bank")],
)
def test_well_known_bins(prefix: str, bank: str) -> None:
    assert parse_card(with_luhn(prefix + "123456789")).bank == bank


def test_unknown_bin_is_valid_with_no_bank() -> None:
    card = parse_card(with_luhn("411111111111111"))
    assert card.bank is None


@given(number=valid_cards, data=st.data())
def test_persian_and_arabic_digits_and_separators_normalize(number: str, data: st.DataObject) -> None:
    table = data.draw(st.sampled_from([PERSIAN, ARABIC, "0123456789"]))
    typed = "".join(table[int(c)] + data.draw(st.sampled_from(["", "", " ", "-"])) for c in number)
    assert parse_card(typed).number == number


@given(number=valid_cards, pos=st.integers(0, 15), delta=st.integers(1, 9))
def test_one_mistyped_digit_fails_luhn(number: str, pos: int, delta: int) -> None:
    typo = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    with pytest.raises(InvalidCard):
        parse_card(typo)


@given(number=valid_cards)
def test_mask_never_contains_the_middle_digits(number: str) -> None:
    masked = mask_card(number)
    assert masked == number[:6] + "******" + number[-4:]
    assert "*" * 6 == masked[6:12]
    assert repr(parse_card(number)).count(number) == 0
    assert number not in str(parse_card(number))


@pytest.mark.parametrize(
    "text",
    ["", "603799123456789", "60379912345678930", "6037991234567894", "6037abcd12345678", "۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹x",
     "6037991234567893\n1", "²603799123456789", "6" * 65, None, 6037991234567893],
)
def test_invalid_cards_are_rejected(text: object) -> None:
    with pytest.raises(InvalidCard) as info:
        parse_card(text)
    assert info.value.code == "invalid_card"
    assert info.value.message


@given(a=valid_cards, b=valid_cards)
def test_card_hash_is_keyed_and_matches_only_the_same_card(a: str, b: str) -> None:
    assert card_hash(a, secret=SECRET) == card_hash(normalize_card(a), secret=SECRET)
    assert (card_hash(a, secret=SECRET) == card_hash(b, secret=SECRET)) == (a == b)
    assert card_hash(a, secret=SECRET) != card_hash(a, secret=b"t" * 32)
    assert a not in card_hash(a, secret=SECRET)


def test_card_hash_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError):
        card_hash("6037991234567893", secret=b"short")


def test_every_bank_row_is_well_formed() -> None:
    for bank in BANKS:
        assert len(bank.iban_code) == 3 and bank.iban_code.isdigit()
        assert all(len(b) == 6 and b.isdigit() for b in bank.bins)
