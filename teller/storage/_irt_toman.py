"""Migration 7's SQL: the ``amount`` of stored ``irt.credited`` events, from rials to tomans.

IRT is the toman and its minor unit the rial (``teller.assets.IRT_DECIMALS``, 0 before issue 15, 1
since). What was stored in minor units was rials all along and stays as it is: the ledger's
accounts and transfers, ``statement_lines.amount_minor``. What was stored as a display string with
decimals 0 was rials shown as tomans, ten times too much: the ``amount`` of every ``irt.credited``
outbox row, delivered or not, so that every stored event reads in the unit its schema states.

The conversion is text, one digit moved behind a point ("1500005" -> "150000.5", "1500000" ->
"150000", "5" -> "0.5"): no number is parsed, nothing is rounded. A row whose payload is not JSON or
whose amount is not a plain string of digits is left as it is (the relay parks such a row anyway).
"""

from __future__ import annotations

__all__ = ["IRT_EVENTS_TO_TOMANS_SQLITE", "IRT_EVENTS_TO_TOMANS_PG"]


def _tomans(rials: str) -> str:
    """SQL for the toman text of ``rials``, an expression that is a non-empty string of digits."""
    last = f"substr({rials}, length({rials}), 1)"
    return (f"(CASE WHEN length({rials}) = 1 THEN '0' ELSE substr({rials}, 1, length({rials}) - 1) END"
            f" || CASE WHEN {last} = '0' THEN '' ELSE '.' || {last} END)")


_SQLITE_AMOUNT = "json_extract(payload, '$.amount')"
IRT_EVENTS_TO_TOMANS_SQLITE = f"""
UPDATE outbox SET payload = json_set(payload, '$.amount', {_tomans(_SQLITE_AMOUNT)})
WHERE type = 'irt.credited' AND json_valid(payload) AND json_type(payload, '$.amount') = 'text'
    AND {_SQLITE_AMOUNT} <> '' AND {_SQLITE_AMOUNT} NOT GLOB '*[^0-9]*'
"""

# A payload that is not JSON must not fail the migration (and with it every start): the cast is
# tried in a function that answers NULL instead, dropped again at the end.
_PG_AMOUNT = "(teller_m9_json(payload) ->> 'amount')"
IRT_EVENTS_TO_TOMANS_PG = f"""
CREATE FUNCTION teller_m9_json(text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN $1::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
    RETURN NULL;
END $$;
UPDATE outbox SET payload = jsonb_set(teller_m9_json(payload), ARRAY['amount'], to_jsonb({_tomans(_PG_AMOUNT)}))::text
WHERE type = 'irt.credited' AND jsonb_typeof(teller_m9_json(payload) -> 'amount') = 'string'
    AND {_PG_AMOUNT} ~ '^[0-9]+$';
DROP FUNCTION teller_m9_json(text);
"""
