"""The schema: versioned migrations, one logical schema written once for both backends.

Each migration is a template; ``render`` fills the few dialect words:

- ``{AMOUNT}``: amounts in the smallest unit. NUMERIC(78,0) on PostgreSQL (any uint256 fits);
  TEXT holding a decimal integer on SQLite, because SQLite integers stop at 2**63 and a wei
  amount passes that at ~9.2 ETH. Never a float. Columns holding amounts end in ``_minor``, and
  the store turns them back into Python ints on read (see ``teller.storage.store``).
- ``{TS}`` / ``{NOW}``: timestamps (TIMESTAMPTZ; on SQLite ISO-8601 UTC text with a ``Z``).
  Columns holding timestamps end in ``_at`` and come back as aware ``datetime`` objects.
- ``{PK}``: a 64-bit auto-assigned integer primary key.

Migrations are applied in order at open, each in its own transaction, recorded in
``schema_migrations``. Never edit a released migration: add a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Migration", "MIGRATIONS", "render"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str                  # template for both backends
    postgresql_only: str = ""  # e.g. the ledger's server-side function
    sqlite_only: str = ""      # where the two dialects differ beyond the words ``render`` fills (JSON)


_DIALECT = {
    "sqlite": {
        "AMOUNT": "TEXT",
        "TS": "TEXT",
        "NOW": "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
        "PK": "INTEGER PRIMARY KEY",
    },
    "postgresql": {
        "AMOUNT": "NUMERIC(78,0)",
        "TS": "TIMESTAMPTZ",
        "NOW": "now()",
        "PK": "BIGSERIAL PRIMARY KEY",
    },
}


def render(sql: str, backend: str) -> str:
    return sql.format(**_DIALECT[backend])


_INITIAL = """
CREATE TABLE users (
    id {PK},
    telegram_id BIGINT NOT NULL UNIQUE,
    username TEXT,
    first_name TEXT NOT NULL DEFAULT '',
    created_at {TS} NOT NULL DEFAULT {NOW}
);

CREATE TABLE deposit_addresses (
    id {PK},
    user_id BIGINT NOT NULL REFERENCES users(id),
    chain TEXT NOT NULL,
    address TEXT NOT NULL,
    hd_index BIGINT NOT NULL,
    created_at {TS} NOT NULL DEFAULT {NOW},
    UNIQUE (chain, address),
    UNIQUE (user_id, chain),
    UNIQUE (chain, hd_index)
);

CREATE TABLE chain_checkpoints (
    chain TEXT PRIMARY KEY,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    updated_at {TS} NOT NULL DEFAULT {NOW}
);

-- The window of recent block hashes a watcher keeps to find the common ancestor after a reorg.
CREATE TABLE chain_blocks (
    chain TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    parent_hash TEXT NOT NULL,
    PRIMARY KEY (chain, block_number)
);

CREATE TABLE deposits (
    id {PK},
    user_id BIGINT NOT NULL REFERENCES users(id),
    chain TEXT NOT NULL,
    asset TEXT NOT NULL,
    address TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    log_index BIGINT NOT NULL,           -- -1 for a native transfer
    amount_minor {AMOUNT} NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'credited', 'orphaned')),
    created_at {TS} NOT NULL DEFAULT {NOW},
    updated_at {TS} NOT NULL DEFAULT {NOW},
    credited_at {TS},
    UNIQUE (chain, tx_hash, log_index)
);
CREATE INDEX deposits_user ON deposits (user_id, id);
CREATE INDEX deposits_chain_status ON deposits (chain, status, block_number);

CREATE TABLE withdrawals (
    id {PK},
    user_id BIGINT NOT NULL REFERENCES users(id),
    chain TEXT NOT NULL,
    asset TEXT NOT NULL,
    to_address TEXT NOT NULL,
    amount_minor {AMOUNT} NOT NULL,
    fee_minor {AMOUNT} NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_fingerprint TEXT NOT NULL,
    hold_key TEXT,                        -- the ledger key of the pending transfer
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'signed', 'broadcast', 'confirmed', 'failed')),
    from_address TEXT,
    nonce BIGINT,
    tx_hash TEXT,
    failure_reason TEXT,
    created_at {TS} NOT NULL DEFAULT {NOW},
    updated_at {TS} NOT NULL DEFAULT {NOW},
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX withdrawals_user ON withdrawals (user_id, id);
CREATE INDEX withdrawals_chain_status ON withdrawals (chain, status);

-- Every signed transaction for a withdrawal, one row per (nonce, hash): replacements included.
CREATE TABLE withdrawal_attempts (
    id {PK},
    withdrawal_id BIGINT NOT NULL REFERENCES withdrawals(id),
    chain TEXT NOT NULL,
    nonce BIGINT NOT NULL,
    tx_hash TEXT NOT NULL,
    raw_tx TEXT NOT NULL,
    max_fee_per_gas_wei {AMOUNT} NOT NULL,
    max_priority_fee_per_gas_wei {AMOUNT} NOT NULL,
    status TEXT NOT NULL DEFAULT 'signed'
        CHECK (status IN ('signed', 'broadcast', 'mined', 'replaced', 'dropped', 'failed')),
    block_number BIGINT,
    created_at {TS} NOT NULL DEFAULT {NOW},
    updated_at {TS} NOT NULL DEFAULT {NOW},
    UNIQUE (chain, tx_hash)
);
CREATE INDEX withdrawal_attempts_withdrawal ON withdrawal_attempts (withdrawal_id, nonce);

CREATE TABLE address_nonces (
    chain TEXT NOT NULL,
    address TEXT NOT NULL,
    next_nonce BIGINT NOT NULL,
    updated_at {TS} NOT NULL DEFAULT {NOW},
    PRIMARY KEY (chain, address)
);

CREATE TABLE cards (
    id {PK},
    user_id BIGINT NOT NULL REFERENCES users(id),
    card_hash TEXT NOT NULL UNIQUE,       -- keyed hash of the full number: matching without storing it
    card_masked TEXT NOT NULL,
    iban TEXT,
    owner_name TEXT,
    bank TEXT,
    status TEXT NOT NULL DEFAULT 'verified' CHECK (status IN ('pending', 'verified', 'rejected')),
    created_at {TS} NOT NULL DEFAULT {NOW}
);
CREATE INDEX cards_user ON cards (user_id);
CREATE INDEX cards_iban ON cards (iban);

CREATE TABLE ibans (
    id {PK},
    user_id BIGINT NOT NULL REFERENCES users(id),
    iban TEXT NOT NULL UNIQUE,
    owner_name TEXT,
    bank TEXT,
    created_at {TS} NOT NULL DEFAULT {NOW}
);
CREATE INDEX ibans_user ON ibans (user_id);

CREATE TABLE statement_lines (
    id {PK},
    bank_reference TEXT NOT NULL UNIQUE,
    amount_minor {AMOUNT} NOT NULL,
    source_iban TEXT,
    source_card_masked TEXT,
    source_card_hash TEXT,
    occurred_at {TS},
    status TEXT NOT NULL CHECK (status IN ('matched', 'unmatched', 'assigned')),
    user_id BIGINT REFERENCES users(id),
    created_at {TS} NOT NULL DEFAULT {NOW},
    updated_at {TS} NOT NULL DEFAULT {NOW}
);
CREATE INDEX statement_lines_status ON statement_lines (status, id);
CREATE INDEX statement_lines_user ON statement_lines (user_id, id);

CREATE TABLE sync_cursors (
    name TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at {TS} NOT NULL DEFAULT {NOW}
);

CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    asset TEXT NOT NULL,
    user_id BIGINT,                       -- set for user:… accounts, which may never go below zero
    posted_debits_minor {AMOUNT} NOT NULL DEFAULT 0,
    posted_credits_minor {AMOUNT} NOT NULL DEFAULT 0,
    pending_debits_minor {AMOUNT} NOT NULL DEFAULT 0,
    pending_credits_minor {AMOUNT} NOT NULL DEFAULT 0,
    created_at {TS} NOT NULL DEFAULT {NOW}
);
CREATE INDEX accounts_user ON accounts (user_id);

-- kind: single (posted at once) | pending (a hold) | post | void (resolve the hold named by
-- pending_key). A hold's status moves pending -> posted | voided once; the partial unique index on
-- pending_key makes a second resolution impossible whatever the code above does.
CREATE TABLE transfers (
    id {PK},
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('single', 'pending', 'post', 'void')),
    debit TEXT NOT NULL REFERENCES accounts(name),
    credit TEXT NOT NULL REFERENCES accounts(name),
    asset TEXT NOT NULL,
    amount_minor {AMOUNT} NOT NULL,
    pending_key TEXT,
    status TEXT NOT NULL CHECK (status IN ('posted', 'pending', 'voided')),
    fingerprint TEXT NOT NULL,
    debit_user_id BIGINT,
    credit_user_id BIGINT,
    created_at {TS} NOT NULL DEFAULT {NOW}
);
CREATE UNIQUE INDEX transfers_resolves_once ON transfers (pending_key) WHERE pending_key IS NOT NULL;
CREATE INDEX transfers_debit_user ON transfers (debit_user_id, id) WHERE debit_user_id IS NOT NULL;
CREATE INDEX transfers_credit_user ON transfers (credit_user_id, id) WHERE credit_user_id IS NOT NULL;

CREATE TABLE outbox (
    id {PK},
    type TEXT NOT NULL,
    payload TEXT NOT NULL,                -- JSON text
    created_at {TS} NOT NULL DEFAULT {NOW},
    delivered_at {TS}
);
CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;

CREATE TABLE notifications_sent (
    event_id BIGINT PRIMARY KEY,
    user_id BIGINT,
    telegram_id BIGINT,
    status TEXT NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'blocked', 'skipped')),
    sent_at {TS} NOT NULL DEFAULT {NOW}
);
"""

# The relay parks a row it can never publish (parked_reason set, delivered_at still NULL: it stays
# in the backlog, loudly, until ops fix and unpark it). The notifier claims an event ('sending')
# before it sends, so a crash mid-send never sends twice; the table is rebuilt because the
# original CHECK had no 'sending' (nor 'rejected'/'failed') and SQLite cannot alter a CHECK.
_EVENTS_DELIVERY = """
ALTER TABLE outbox ADD COLUMN parked_reason TEXT;
CREATE TABLE notifications_sent_v3 (
    event_id BIGINT PRIMARY KEY,
    user_id BIGINT,
    telegram_id BIGINT,
    status TEXT NOT NULL DEFAULT 'sent'
        CHECK (status IN ('sending', 'sent', 'blocked', 'rejected', 'failed', 'skipped')),
    sent_at {TS} NOT NULL DEFAULT {NOW},
    detail TEXT
);
INSERT INTO notifications_sent_v3 (event_id, user_id, telegram_id, status, sent_at)
    SELECT event_id, user_id, telegram_id, status, sent_at FROM notifications_sent;
DROP TABLE notifications_sent;
ALTER TABLE notifications_sent_v3 RENAME TO notifications_sent;
"""

# Money-path safety (issue 13):
# - withdrawals: an incident (our nonce used, none of our transactions mined; a receipt without the
#   expected Transfer log) waits for an operator in ``incident_reason``; a row that keeps failing is
#   parked with its error and retried at ``retry_at`` (backoff), while the rest of the queue goes on.
# - withdrawal_limit_locks: the row a withdrawal's daily-limit check locks (an upsert) in the hold's
#   own transaction, so check and hold are one step across processes on both backends.
# - freezes: what stops withdrawals until an operator acts (scope all | chain | user_asset); one
#   active freeze per key (partial unique index), history kept.
# - deposit addresses get a per-chain sequence taken under a row lock in the claim's transaction,
#   so the order of ``seq`` is the order claims commit in (ids are not, on PostgreSQL), and the
#   watcher's checkpoint at claim time (``claim_block``): an address loaded late is scanned from it.
_MONEY_SAFETY = """
ALTER TABLE withdrawals ADD COLUMN incident_reason TEXT;
ALTER TABLE withdrawals ADD COLUMN incident_at {TS};
ALTER TABLE withdrawals ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE withdrawals ADD COLUMN last_error TEXT;
ALTER TABLE withdrawals ADD COLUMN retry_at {TS};
CREATE INDEX withdrawals_incidents ON withdrawals (chain) WHERE incident_reason IS NOT NULL;
CREATE INDEX withdrawals_user_day ON withdrawals (user_id, chain, asset, created_at);

CREATE TABLE withdrawal_limit_locks (
    user_id BIGINT NOT NULL,
    asset TEXT NOT NULL,
    locked_at {TS} NOT NULL,
    PRIMARY KEY (user_id, asset)
);

CREATE TABLE freezes (
    id {PK},
    freeze_key TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('all', 'chain', 'user_asset')),
    chain TEXT,
    user_id BIGINT,
    asset TEXT,
    reason TEXT NOT NULL,
    created_at {TS} NOT NULL DEFAULT {NOW},
    resolved_at {TS},
    resolution TEXT,
    resolution_reason TEXT
);
CREATE UNIQUE INDEX freezes_active_key ON freezes (freeze_key) WHERE resolved_at IS NULL;
CREATE INDEX freezes_active ON freezes (scope) WHERE resolved_at IS NULL;

CREATE TABLE address_sequences (
    chain TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);
ALTER TABLE deposit_addresses ADD COLUMN seq BIGINT;
ALTER TABLE deposit_addresses ADD COLUMN claim_block BIGINT;
UPDATE deposit_addresses SET seq = id;
INSERT INTO address_sequences (chain, seq) SELECT chain, MAX(id) FROM deposit_addresses GROUP BY chain;
CREATE UNIQUE INDEX deposit_addresses_seq ON deposit_addresses (chain, seq);
"""

# Deposits (issue 14):
# - a deposit is identified by (chain, tx_hash, asset, address, ordinal), where ordinal is the k-th
#   transfer of that asset to that address within the transaction, by log index (native: 0). The log
#   index belongs to the block, not the transaction: a transaction re-mined elsewhere keeps its
#   identity, so it is the same row and the same credit. ``log_index`` stays, as information.
# - ``credit_key``: the ledger key the row is (or will be) credited with. Rows from before keep the
#   key they had (``deposit:{chain}:{tx}:{log_index}``), so a replay of an old credit is still a no-op.
# - a credited row whose transaction leaves the chain is ``out_of_chain`` until ``reverse_at_block``;
#   if it has not come back by then it is ``reversed_after_credit`` (with a freeze) and waits for an
#   operator's ``resolution`` (debited | released) and reason.
# SQLite cannot change a CHECK nor drop a UNIQUE constraint, so the table is rebuilt (no table has a
# foreign key to deposits). Old rows get their ordinal by rank among the rows of the same transfer
# identity, by (block, log index): a transaction with two transfers to one address keeps 0 and 1.
# - deposit addresses: what a late-loaded address still has to scan (``backfill_next_block`` ..
#   ``backfill_to_block``), and per chain the address sequence the watcher has taken in
#   (``chain_checkpoints.address_seq``); rows claimed with a NULL seq (before claims took one) get
#   one above their chain's highest, in id order.
_DEPOSIT_IDENTITY = """
CREATE TABLE deposits_v5 (
    id {PK},
    user_id BIGINT NOT NULL REFERENCES users(id),
    chain TEXT NOT NULL,
    asset TEXT NOT NULL,
    address TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    ordinal BIGINT NOT NULL DEFAULT 0 CHECK (ordinal >= 0),
    log_index BIGINT NOT NULL,
    amount_minor {AMOUNT} NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'credited', 'orphaned', 'out_of_chain', 'reversed_after_credit')),
    credit_key TEXT UNIQUE,
    created_at {TS} NOT NULL DEFAULT {NOW},
    updated_at {TS} NOT NULL DEFAULT {NOW},
    credited_at {TS},
    left_chain_at {TS},
    reverse_at_block BIGINT,
    reversed_at {TS},
    reappeared_block BIGINT,
    resolution TEXT CHECK (resolution IN ('debited', 'released')),
    resolution_reason TEXT,
    resolved_at {TS},
    UNIQUE (chain, tx_hash, asset, address, ordinal)
);
INSERT INTO deposits_v5 (id, user_id, chain, asset, address, tx_hash, ordinal, log_index, amount_minor,
        block_number, block_hash, status, credit_key, created_at, updated_at, credited_at)
    SELECT d.id, d.user_id, d.chain, d.asset, d.address, d.tx_hash,
        (SELECT COUNT(*) FROM deposits e WHERE e.chain = d.chain AND e.tx_hash = d.tx_hash AND e.asset = d.asset
            AND e.address = d.address AND (e.block_number < d.block_number
            OR (e.block_number = d.block_number AND e.log_index < d.log_index))),
        d.log_index, d.amount_minor, d.block_number, d.block_hash, d.status,
        'deposit:' || d.chain || ':' || d.tx_hash || ':' || CAST(d.log_index AS TEXT),
        d.created_at, d.updated_at, d.credited_at
    FROM deposits d;
DROP TABLE deposits;
ALTER TABLE deposits_v5 RENAME TO deposits;
CREATE INDEX deposits_user ON deposits (user_id, id);
CREATE INDEX deposits_chain_status ON deposits (chain, status, block_number);
CREATE INDEX deposits_reversals_open ON deposits (id) WHERE status = 'reversed_after_credit' AND resolved_at IS NULL;

ALTER TABLE deposit_addresses ADD COLUMN backfill_next_block BIGINT;
ALTER TABLE deposit_addresses ADD COLUMN backfill_to_block BIGINT;
CREATE INDEX deposit_addresses_backfill ON deposit_addresses (chain, backfill_next_block)
    WHERE backfill_to_block IS NOT NULL;
ALTER TABLE chain_checkpoints ADD COLUMN address_seq BIGINT NOT NULL DEFAULT 0;

CREATE TABLE address_seq_fill AS
    SELECT a.id AS id,
        (SELECT COALESCE(MAX(b.seq), 0) FROM deposit_addresses b WHERE b.chain = a.chain)
        + (SELECT COUNT(*) FROM deposit_addresses c WHERE c.chain = a.chain AND c.seq IS NULL AND c.id <= a.id) AS seq
    FROM deposit_addresses a WHERE a.seq IS NULL;
UPDATE deposit_addresses SET seq = (SELECT f.seq FROM address_seq_fill f WHERE f.id = deposit_addresses.id)
    WHERE seq IS NULL;
DROP TABLE address_seq_fill;
INSERT INTO address_sequences (chain, seq)
    SELECT chain, 0 FROM deposit_addresses WHERE chain NOT IN (SELECT chain FROM address_sequences) GROUP BY chain;
UPDATE address_sequences SET seq = (SELECT MAX(d.seq) FROM deposit_addresses d WHERE d.chain = address_sequences.chain)
    WHERE seq < (SELECT MAX(d.seq) FROM deposit_addresses d WHERE d.chain = address_sequences.chain);
"""

# The rebuilt table's ids were copied: its sequence continues after them.
_DEPOSIT_IDENTITY_PG = """
ALTER SEQUENCE deposits_v5_id_seq RENAME TO deposits_id_seq;
SELECT setval(pg_get_serial_sequence('deposits', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM deposits;
"""

# The bot's memory of recent Telegram update ids (teller.storage.bot_updates): a webhook or polling
# redelivery of an update already taken in is dropped, across restarts. Pruned by age and by count.
_BOT_UPDATES = """
CREATE TABLE bot_updates (
    update_id BIGINT PRIMARY KEY,
    received_at {TS} NOT NULL
);
CREATE INDEX bot_updates_received_at ON bot_updates (received_at);
"""

# Issue 15: every card and IBAN bound to a verified owner; the card-hash key carries its id.
# What this migration can and cannot do for existing rows:
# - It cannot verify an existing card's owner: it has no card number (only a keyed hash), and no
#   user has a verified identity yet. Every existing card and IBAN becomes 'pending': listed to its
#   user, never matched. The user re-adds it after verifying their identity, which runs the owner
#   check and turns that same row 'verified' (or frees it for the card's real owner).
# - It cannot know which key made the existing hashes (irt.card_hash_secret, or a key derived from
#   the JWT secret when that was unset): it stamps them key id 'legacy'. Configure the old secret as
#   [irt.card_hash_previous] legacy = "..." (the derived one: python -m teller.payments.card_keys
#   legacy) and a re-added card finds its row, and past lines' hashes stay comparable.
_IRT_OWNERS = """
CREATE TABLE identities (
    user_id BIGINT PRIMARY KEY REFERENCES users(id),
    mobile TEXT NOT NULL,                 -- 09xxxxxxxxx, from the user's own Telegram contact only
    national_code TEXT UNIQUE,            -- set once Shahkar matched it to the mobile: one account per person
    status TEXT NOT NULL CHECK (status IN ('contact_shared', 'verified')),
    contact_at {TS} NOT NULL,
    verified_at {TS},
    updated_at {TS} NOT NULL DEFAULT {NOW},
    CHECK ((status = 'verified') = (national_code IS NOT NULL AND verified_at IS NOT NULL))
);

ALTER TABLE cards ADD COLUMN key_id TEXT NOT NULL DEFAULT 'legacy';
UPDATE cards SET status = 'pending' WHERE status = 'verified';
ALTER TABLE ibans ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';

-- A removed card or IBAN leaves its row here (who, when, why) and frees its hash / IBAN.
CREATE TABLE irt_removals (
    id {PK},
    kind TEXT NOT NULL CHECK (kind IN ('card', 'iban')),
    item_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id),
    shown TEXT NOT NULL,                  -- the masked card, or the IBAN
    card_hash TEXT,
    key_id TEXT,
    status TEXT NOT NULL,
    registered_at {TS} NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('removed_by_user', 'superseded_by_verified_owner')),
    removed_by BIGINT REFERENCES users(id),
    removed_at {TS} NOT NULL
);
CREATE INDEX irt_removals_user ON irt_removals (user_id, id);

ALTER TABLE statement_lines ADD COLUMN source_card_key_id TEXT;
UPDATE statement_lines SET source_card_key_id = 'legacy' WHERE source_card_hash IS NOT NULL;
ALTER TABLE statement_lines ADD COLUMN reason TEXT;         -- why a line went to suspense
ALTER TABLE statement_lines ADD COLUMN assigned_by TEXT;    -- the operator who assigned it from suspense
-- A card re-keyed under a new key takes its lines' hashes along (Owners.rekey_card_lines).
CREATE INDEX statement_lines_card_hash ON statement_lines (source_card_hash);
CREATE INDEX cards_mask ON cards (card_masked);
"""

# The ledger's group commit on PostgreSQL: a whole batch in one round trip. See _pg_function.py.
from teller.storage._pg_function import APPLY_TRANSFERS_SQL  # noqa: E402 - kept beside its caller
# IRT is the toman with the rial as its minor unit (issue 15): stored event amounts move to tomans.
from teller.storage._irt_toman import IRT_EVENTS_TO_TOMANS_PG, IRT_EVENTS_TO_TOMANS_SQLITE  # noqa: E402

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL),
    Migration(2, "ledger batch function", "", postgresql_only=APPLY_TRANSFERS_SQL),
    Migration(3, "events: parked outbox rows, notification claims", _EVENTS_DELIVERY),
    Migration(4, "money-path safety: incidents, parking, limit locks, freezes, address order", _MONEY_SAFETY),
    Migration(5, "deposits: identity by transfer ordinal, credit key, reversals; address backfill",
              _DEPOSIT_IDENTITY, postgresql_only=_DEPOSIT_IDENTITY_PG),
    Migration(6, "bot: recent update ids, to drop redelivered updates", _BOT_UPDATES),
    Migration(7, "irt: the amounts of stored irt.credited events in tomans (IRT decimals 1)", "",
              postgresql_only=IRT_EVENTS_TO_TOMANS_PG, sqlite_only=IRT_EVENTS_TO_TOMANS_SQLITE),
    Migration(8, "irt: verified identities, cards and IBANs bound to them, card-hash key ids, removals",
              _IRT_OWNERS),
)
