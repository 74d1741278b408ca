from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from teller.errors import InvalidIban
from teller.payments.banks import BANKS
from teller.payments.iban import build_iban, iban_bank, iban_check_valid, mask_iban, parse_iban

PERSIAN = "۰۱۲۳۴۵۶۷۸۹"
codes = st.sampled_from([b.iban_code for b in BANKS])
accounts = st.text(alphabet="0123456789", min_size=19, max_size=19)
ibans = st.builds(lambda c, a: build_iban(bank_code=c, account=a), codes, accounts)


def test_known_iban() -> None:
    # Published example Shebas: Wikipedia's Iranian IBAN (an unlisted bank code) and a Parsian one.
    assert parse_iban("IR06 2960 0000 0010 0324 2000 01") == "IR062960000000100324200001"
    assert iban_bank("IR062960000000100324200001") is None
    assert parse_iban("ir82-0540-1026-8002-0817-9090-02") == "IR820540102680020817909002"
    assert iban_bank("IR820540102680020817909002") == "Parsian"


@pytest.mark.parametrize(("code", "bank"), [("017", "Melli"), ("012", "Mellat"), ("019", "Saderat"), ("018", "Tejarat"),
                                            ("015", "Sepah"), ("057", "Pasargad"), ("056", "Saman"), ("054", "Parsian"),
                                            ("016", "Keshavarzi"), ("014", "Maskan"), ("013", "Refah"),
                                            ("055", "Eghtesad Novin"), ("062", "Ayandeh"), ("059", "Sina"),
                                            ("061", "Shahr"), ("021", "Post Bank")])
def test_bank_codes(code: str, bank: str) -> None:
    assert iban_bank(build_iban(bank_code=code, account="0" * 18 + "1")) == bank


@given(iban=ibans, data=st.data())
def test_normalization_accepts_what_users_paste(iban: str, data: st.DataObject) -> None:
    body = iban[2:]
    if data.draw(st.booleans()):
        body = "".join(PERSIAN[int(c)] for c in body)
    sep = data.draw(st.sampled_from(["", " ", "-"]))
    body = sep.join(body[i : i + 4] for i in range(0, len(body), 4))
    prefix = data.draw(st.sampled_from(["IR", "ir", "Ir", ""]))
    assert parse_iban(prefix + body) == iban
    assert iban_check_valid(iban)


@given(iban=ibans, pos=st.integers(2, 25), delta=st.integers(1, 9))
def test_one_mistyped_digit_fails_mod97(iban: str, pos: int, delta: int) -> None:
    typo = iban[:pos] + str((int(iban[pos]) + delta) % 10) + iban[pos + 1 :]
    assert not iban_check_valid(typo)
    with pytest.raises(InvalidIban):
        parse_iban(typo)


@given(iban=ibans)
def test_mask_keeps_bank_and_last_four_only(iban: str) -> None:
    masked = mask_iban(iban)
    assert len(masked) == len(iban)
    assert masked.startswith(iban[:7]) and masked.endswith(iban[-4:])
    assert set(masked[7:-4]) == {"*"}


@pytest.mark.parametrize("text", ["", "IR06017000000010032420000", "DE89370400440532013000", "IR06017000000010032420000A",
                                  "IR070170000000100324200001", "XX060170000000100324200001", None, 6, "I" * 80])
def test_invalid_ibans_are_rejected(text: object) -> None:
    with pytest.raises(InvalidIban) as info:
        parse_iban(text)
    assert info.value.code == "invalid_iban"


@given(text=st.text(max_size=80))
def test_any_text_is_an_iban_or_invalid_iban_never_another_error(text: str) -> None:
    try:
        iban = parse_iban(text)
    except InvalidIban:
        return
    assert iban_check_valid(iban) and iban.isascii()
