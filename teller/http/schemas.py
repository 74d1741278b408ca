"""JSON Schemas of the HTTP contract (docs/API.md), used by the OpenAPI document."""

from __future__ import annotations

from typing import Any

__all__ = ["ref", "COMPONENTS", "ERROR", "AMOUNT", "TIMESTAMP"]

AMOUNT = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "decimal string in display units"}
TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], *, required: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    return {
        "type": "object", "properties": props,
        "required": list(props) if required is None else required, "additionalProperties": extra,
    }


COMPONENTS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}})}),
    "User": _obj({
        "id": {"type": "string"}, "telegram_id": {"type": "integer"},
        "username": {"type": ["string", "null"]}, "first_name": {"type": "string"}, "created_at": TIMESTAMP,
    }),
    "AuthRequest": _obj({"init_data": {"type": "string", "maxLength": 4096}}, required=[]),
    "AuthResponse": _obj({
        "token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"}, "user": ref("User"),
    }),
    "Asset": _obj({
        "asset": {"type": "string"}, "chain": {"type": ["string", "null"]}, "decimals": {"type": "integer"},
        "contract": {"type": ["string", "null"]}, "min_withdrawal": AMOUNT, "withdrawal_fee": AMOUNT,
        "confirmations": {"type": ["integer", "null"]},
    }),
    "Assets": _obj({"assets": {"type": "array", "items": ref("Asset")}}),
    "Balance": _obj({
        "asset": {"type": "string"}, "chain": {"type": ["string", "null"]}, "available": AMOUNT, "held": AMOUNT,
        "decimals": {"type": "integer"},
    }),
    "Balances": _obj({"balances": {"type": "array", "items": ref("Balance")}}),
    "Transaction": _obj({
        "id": {"type": "string"}, "asset": {"type": "string"}, "chain": {"type": ["string", "null"]},
        "direction": {"type": "string", "enum": ["credit", "debit"]}, "amount": AMOUNT,
        "kind": {"type": "string"}, "status": {"type": "string", "enum": ["posted", "pending", "voided"]},
        "created_at": TIMESTAMP,
    }),
    "Transactions": _obj({
        "transactions": {"type": "array", "items": ref("Transaction")}, "next_cursor": {"type": ["string", "null"]},
    }),
    "CardRequest": _obj({"card_number": {"type": "string", "maxLength": 64}}, required=[]),
    "Card": _obj({
        "id": {"type": "string"}, "card_masked": {"type": "string", "pattern": r"^[0-9]{6}\*{6}[0-9]{4}$"},
        "iban": {"type": ["string", "null"]}, "owner_name": {"type": ["string", "null"]},
        "bank": {"type": ["string", "null"]}, "status": {"type": "string"}, "created_at": TIMESTAMP,
    }),
    "Cards": _obj({"cards": {"type": "array", "items": ref("Card")}}),
    "Identity": _obj({
        "status": {"type": "string", "enum": ["none", "contact_shared", "verified"]},
        "mobile_masked": {"type": ["string", "null"], "pattern": r"^09[0-9]{2}\*{5}[0-9]{2}$"},
        "national_code_masked": {"type": ["string", "null"], "pattern": r"^\*{6}[0-9]{4}$"},
        "verified_at": NULLABLE_TIMESTAMP,
    }),
    "ContactRequest": _obj({"contact": {"type": "string", "maxLength": 4096}}, required=[]),
    "NationalCodeRequest": _obj({"national_code": {"type": "string", "maxLength": 32}}, required=[]),
    "IbanRequest": _obj({"iban": {"type": "string", "maxLength": 64}}, required=[]),
    "Iban": _obj({
        "id": {"type": "string"}, "iban": {"type": "string", "pattern": r"^IR[0-9]{24}$"},
        "owner_name": {"type": ["string", "null"]}, "bank": {"type": ["string", "null"]},
        "status": {"type": "string"}, "created_at": TIMESTAMP,
    }),
    "Ibans": _obj({"ibans": {"type": "array", "items": ref("Iban")}}),
    "DevContact": _obj({"contact": {"type": "string"}}),
    "IrtDepositInfo": _obj({"iban": {"type": "string"}, "account_owner": {"type": "string"}, "bank": {"type": "string"}}),
    "IrtDeposit": _obj({
        "id": {"type": "string"}, "amount": AMOUNT, "source_iban": {"type": ["string", "null"]},
        "source_card_masked": {"type": ["string", "null"]}, "bank_reference": {"type": "string"},
        "status": {"type": "string", "enum": ["credited"]}, "created_at": TIMESTAMP,
    }),
    "IrtDeposits": _obj({"deposits": {"type": "array", "items": ref("IrtDeposit")}}),
    "IrtLine": _obj({
        "id": {"type": "string"}, "bank_reference": {"type": "string"}, "amount": AMOUNT,
        "source_iban": {"type": ["string", "null"]}, "source_card_masked": {"type": ["string", "null"]},
        "occurred_at": NULLABLE_TIMESTAMP, "status": {"type": "string", "enum": ["matched", "unmatched", "assigned"]},
        "user_id": {"type": ["string", "null"]}, "reason": {"type": ["string", "null"]},
        "assigned_by": {"type": ["string", "null"]}, "created_at": TIMESTAMP,
    }),
    "IrtLines": _obj({"lines": {"type": "array", "items": ref("IrtLine")}}),
    "IrtAssignRequest": _obj({"user_id": {"type": ["string", "integer"]},
                              "operator": {"type": "string", "maxLength": 64}}, required=[]),
    "WithdrawalRequest": _obj({
        "chain": {"type": "string", "maxLength": 32}, "asset": {"type": "string", "maxLength": 32},
        "to": {"type": "string", "maxLength": 64}, "amount": {"type": "string", "maxLength": 96},
    }, extra=False),
    "Withdrawal": _obj({
        "id": {"type": "string"}, "chain": {"type": "string"}, "asset": {"type": "string"}, "to": {"type": "string"},
        "amount": AMOUNT, "fee": AMOUNT,
        "status": {"type": "string", "enum": ["pending", "signed", "broadcast", "confirmed", "failed"]},
        "tx_hash": {"type": ["string", "null"]}, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
        "failure_reason": {"type": ["string", "null"]},
    }),
    "Withdrawals": _obj({
        "withdrawals": {"type": "array", "items": ref("Withdrawal")}, "next_cursor": {"type": ["string", "null"]},
    }),
    "DepositAddressRequest": _obj({"chain": {"type": "string", "maxLength": 32}}, extra=False),
    "DepositAddress": _obj({"chain": {"type": "string"}, "address": {"type": "string"}}),
    "Deposit": _obj({
        "id": {"type": "string"}, "chain": {"type": "string"}, "asset": {"type": "string"}, "amount": AMOUNT,
        "tx_hash": {"type": "string"}, "log_index": {"type": "integer"}, "block_number": {"type": "integer"},
        "confirmations": {"type": "integer"}, "required_confirmations": {"type": "integer"},
        "status": {"type": "string",
                   "enum": ["pending", "credited", "orphaned", "out_of_chain", "reversed_after_credit"]},
        "created_at": TIMESTAMP, "credited_at": NULLABLE_TIMESTAMP,
    }),
    "Deposits": _obj({"deposits": {"type": "array", "items": ref("Deposit")}, "next_cursor": {"type": ["string", "null"]}},
                     required=["deposits"]),
    "DepositReversal": _obj({
        "id": {"type": "string"}, "user_id": {"type": "string"}, "chain": {"type": "string"},
        "asset": {"type": "string"}, "amount": AMOUNT, "tx_hash": {"type": "string"}, "ordinal": {"type": "integer"},
        "block_number": {"type": "integer"}, "reappeared_block": {"type": ["integer", "null"]},
        "reversed_at": NULLABLE_TIMESTAMP, "resolution": {"type": ["string", "null"], "enum": ["debited", "released", None]},
        "resolution_reason": {"type": ["string", "null"]}, "resolved_at": NULLABLE_TIMESTAMP,
    }),
    "DepositReversals": _obj({"reversals": {"type": "array", "items": ref("DepositReversal")}}),
    "DepositResolveRequest": _obj({
        "action": {"type": "string", "enum": ["debit", "release"]},
        "reason": {"type": "string", "minLength": 1, "maxLength": 500},
    }, extra=False),
    "FaucetRequest": _obj({
        "chain": {"type": "string", "maxLength": 32}, "asset": {"type": "string", "maxLength": 32},
        "amount": {"type": "string", "maxLength": 96}, "address": {"type": "string", "maxLength": 64},
    }, required=[], extra=False),
    "FaucetResult": _obj({"chain": {"type": "string"}, "asset": {"type": "string"}, "amount": AMOUNT,
                          "tx_hash": {"type": "string"}}),
    "ClientConfig": _obj({"dev": {"type": "boolean"}, "bot_username": {"type": ["string", "null"]}}),
    "Health": _obj({"status": {"type": "string"}}),
    "StatusNode": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "kind": {"type": "string", "enum": ["supervisor", "actor"]},
            "strategy": {"type": ["string", "null"]},
            "state": {"type": "string", "enum": ["running", "restarting", "stopped", "failed"]},
            "restarts": {"type": "integer"}, "last_failure": {"type": ["object", "null"]},
            "mailbox": {"type": "integer"}, "processed": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/StatusNode"}},
        },
        "required": ["name", "kind", "state", "restarts", "last_failure", "mailbox", "processed", "children"],
    },
    "Status": _obj({
        "node": {"type": "string"}, "uptime_s": {"type": "number"}, "tree": ref("StatusNode"),
        "chains": {"type": "array", "items": {"type": "object"}}, "outbox": {"type": "object"},
        "deposit_reversals": _obj({
            "open": {"type": "integer"},
            "items": {"type": "array", "items": _obj({
                "deposit_id": {"type": "string"}, "user_id": {"type": "string"}, "asset": {"type": "string"},
                "amount": AMOUNT, "tx_hash": {"type": "string"}})},
        }),
    }, required=["node", "uptime_s", "tree"]),
}

ERROR = ref("Error")
