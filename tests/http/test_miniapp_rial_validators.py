"""The Rial tab's own checks (static/rial.js) against the rules, under Hypothesis: a national code is 10
digits with its check digit (weights 10..2, mod 11), an IBAN is IR + 24 digits with ISO 13616's mod-97
check; Persian and Arabic digits count as digits; spaces, dashes and direction marks are dropped,
anything else makes the value invalid. The page refuses before sending exactly what the rules refuse.

The functions run in Node (the same file the page loads), a batch of inputs per process.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

RIAL_JS = Path(__file__).resolve().parents[2] / "teller" / "http" / "static" / "rial.js"
NODE = shutil.which("node")
NODE_TIMEOUT_S = 30
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_SEPARATORS = re.compile("[ \u00a0\u200e\u200f\t-]")
RUN_JS = """
  global.window = {};
  require(process.argv[1]);
  const R = window.TellerRial, inputs = JSON.parse(process.argv[2]);
  console.log(JSON.stringify(inputs.map(t => {
    const code = R.normalNationalCode(t), iban = R.normalIban(t);
    return [R.nationalCodeValid(code) ? code : null, R.ibanValid(iban) ? iban : null];
  })));
"""

pytestmark = pytest.mark.skipif(NODE is None, reason="node is needed to run the page's script")


def national_code_rule(text: str) -> str | None:
    code = _SEPARATORS.sub("", text.translate(_DIGITS))
    if not re.fullmatch("[0-9]{10}", code):
        return None
    total = sum(int(d) * (10 - i) for i, d in enumerate(code[:9])) % 11
    return code if int(code[9]) == (total if total < 2 else 11 - total) else None


def iban_rule(text: str) -> str | None:
    iban = _SEPARATORS.sub("", text.translate(_DIGITS)).upper()
    if re.fullmatch("[0-9]{24}", iban):
        iban = "IR" + iban
    if not re.fullmatch("IR[0-9]{24}", iban):
        return None
    return iban if int(iban[4:] + "1827" + iban[2:4]) % 97 == 1 else None


def run_page_checks(inputs: list[str]) -> list[list[str | None]]:
    assert NODE is not None
    done = subprocess.run([NODE, "-e", RUN_JS, str(RIAL_JS), json.dumps(inputs)], capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S, check=True)
    answer: list[list[str | None]] = json.loads(done.stdout)
    return answer


def with_check_digit(nine: str) -> str:
    total = sum(int(d) * (10 - i) for i, d in enumerate(nine)) % 11
    return nine + str(total if total < 2 else 11 - total)


def with_iban_check(bban: str) -> str:
    return "IR%02d%s" % (98 - int(bban + "182700") % 97, bban)


def persianise(draw: st.DrawFn, text: str) -> str:
    """Some digits Persian, some Arabic, some separators in between: what users paste."""
    out = []
    for ch in text:
        form = draw(st.sampled_from(["latin", "persian", "arabic"]))
        if ch.isdigit() and form != "latin":
            ch = chr(ord(ch) + (0x06F0 if form == "persian" else 0x0660) - ord("0"))
        out.append(ch + draw(st.sampled_from(["", "", "", " ", "-", "\u00a0", "\u200f"])))
    return "".join(out)


@st.composite
def national_codes(draw: st.DrawFn) -> str:
    nine = draw(st.text("0123456789", min_size=9, max_size=9))
    code = with_check_digit(nine) if draw(st.booleans()) else nine + draw(st.sampled_from("0123456789"))
    return persianise(draw, draw(st.sampled_from([code, code[:-1], code + "7", code[:4] + "a" + code[5:]])))


@st.composite
def ibans(draw: st.DrawFn) -> str:
    bban = draw(st.text("0123456789", min_size=22, max_size=22))
    iban = with_iban_check(bban) if draw(st.booleans()) else "IR" + draw(st.text("0123456789", min_size=2, max_size=2)) + bban
    shown = draw(st.sampled_from([iban, iban.lower(), iban[2:], iban[:-1], iban + "0", "IS" + iban[2:]]))
    return persianise(draw, shown)


ANY_TEXT = st.text(st.sampled_from("0123456789۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩ -\u00a0\u200fIRirax.+"), max_size=30)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.one_of(national_codes(), ibans(), ANY_TEXT), min_size=40, max_size=40))
def test_the_page_refuses_exactly_what_the_rules_refuse(inputs: list[str]) -> None:
    for text, (code, iban) in zip(inputs, run_page_checks(inputs), strict=True):
        assert code == national_code_rule(text), text
        assert iban == iban_rule(text), text


def test_known_values() -> None:
    answers = run_page_checks(["۰۰۱۲۳۴۵۶۷۹", "٠٠١٢-٣٤٥-٦٧٩", "0012345678", "ir82 0540 1026 8002 0817 9090 02",
                               "820540102680020817909002", "IR820540102680020817909003"])
    assert answers == [["0012345679", None], ["0012345679", None], [None, None],
                       [None, "IR820540102680020817909002"], [None, "IR820540102680020817909002"], [None, None]]
