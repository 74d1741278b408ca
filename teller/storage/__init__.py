"""Teller's durable truth: the schema, SQLite and PostgreSQL behind one interface, the ledger, the outbox."""

from teller.storage.accounts import (
    BANK_IRT,
    SUSPENSE_IRT,
    chain_account,
    fees_account,
    hold_account,
    hot_account,
    parse_account,
    user_account,
)
from teller.storage.ledger import Ledger
from teller.storage.ledger_types import Balance, Event, HistoryEntry, HistoryPage, Transfer
from teller.storage.open import open_store
from teller.storage.outbox import Outbox, OutboxBacklog, OutboxEvent
from teller.storage.store import (
    IntegrityViolation,
    Row,
    StaleWrite,
    StorageError,
    Store,
    UniqueViolation,
    Write,
    utc_now,
)
from teller.storage.users import User, Users

__all__ = [
    "open_store",
    "Store",
    "Write",
    "Row",
    "StorageError",
    "IntegrityViolation",
    "UniqueViolation",
    "StaleWrite",
    "utc_now",
    "Ledger",
    "Transfer",
    "Event",
    "Balance",
    "HistoryEntry",
    "HistoryPage",
    "Outbox",
    "OutboxEvent",
    "OutboxBacklog",
    "User",
    "Users",
    "BANK_IRT",
    "SUSPENSE_IRT",
    "user_account",
    "chain_account",
    "hot_account",
    "hold_account",
    "fees_account",
    "parse_account",
]
