"""The ledger's batch on PostgreSQL: one server-side function call applies a whole batch.

Why a function: one round trip per batch (asyncpg binds the batch as arrays). Why it is safe with
many Teller processes on one database: it first locks every account the batch touches with
``SELECT … ORDER BY name FOR UPDATE`` (one global lock order, so batches never deadlock on
accounts), then decides each transfer against balances nobody else can change until commit.
Idempotency is the unique key (``INSERT … ON CONFLICT DO NOTHING``; a concurrent insert of the same
key waits for the other transaction and then reads its row), and a hold resolves once by the
partial unique index on ``pending_key`` plus a row lock on the hold.

The functions in use (v2, moves; v1 is migration 2's, kept as it shipped) plan their statements per call (``plan_cache_mode = force_custom_plan``): PL/pgSQL
otherwise keeps a generic plan made on the connection's first calls, and one made on an empty
ledger scans every transfer and account to find a batch's keys, slower with every row.

Per transfer it returns (idx, status, row…); status is one of ok, replay, conflict, insufficient,
not_found, resolved, too_much, asset_mismatch.
"""

__all__ = ["APPLY_TRANSFERS_SQL", "APPLY_TRANSFERS_V2_SQL", "APPLY_MOVES_SQL"]

APPLY_TRANSFERS_SQL = r"""
CREATE OR REPLACE FUNCTION teller_apply_transfers(
    p_kinds text[], p_keys text[], p_debits text[], p_credits text[], p_assets text[],
    p_amounts numeric[], p_pending_keys text[], p_fingerprints text[],
    p_debit_users bigint[], p_credit_users bigint[],
    p_event_idx int[], p_event_types text[], p_event_payloads text[])
RETURNS TABLE (r_idx int, r_status text, r_id bigint, r_kind text, r_debit text, r_credit text,
               r_asset text, r_amount numeric, r_pending_key text, r_created_at timestamptz)
LANGUAGE plpgsql AS $fn$
DECLARE
    n int := coalesce(array_length(p_keys, 1), 0);
    i int;
    t transfers%ROWTYPE;
    h transfers%ROWTYPE;
    d accounts%ROWTYPE;
    c accounts%ROWTYPE;
    amt numeric;
    new_id bigint;
    new_at timestamptz;
    ok int[] := '{}';
BEGIN
    -- Create missing accounts, then lock every account of the batch in one global order.
    INSERT INTO accounts (name, asset, user_id)
    SELECT DISTINCT ON (nm) nm, a, u FROM (
        SELECT * FROM unnest(p_debits, p_assets, p_debit_users) AS x(nm, a, u)
        UNION ALL SELECT * FROM unnest(p_credits, p_assets, p_credit_users) AS y(nm, a, u)
    ) s WHERE nm IS NOT NULL ORDER BY nm
    ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM accounts WHERE name IN (
        SELECT unnest(p_debits) UNION SELECT unnest(p_credits)
        UNION SELECT tr.debit FROM transfers tr WHERE tr.key = ANY(p_pending_keys) AND tr.kind = 'pending'
        UNION SELECT tr.credit FROM transfers tr WHERE tr.key = ANY(p_pending_keys) AND tr.kind = 'pending'
    ) ORDER BY name FOR UPDATE;

    FOR i IN 1..n LOOP
        SELECT * INTO t FROM transfers WHERE key = p_keys[i];
        IF FOUND THEN
            r_idx := i; r_status := CASE WHEN t.fingerprint = p_fingerprints[i] THEN 'replay' ELSE 'conflict' END;
            r_id := t.id; r_kind := t.kind; r_debit := t.debit; r_credit := t.credit; r_asset := t.asset;
            r_amount := t.amount_minor; r_pending_key := t.pending_key; r_created_at := t.created_at;
            RETURN NEXT; CONTINUE;
        END IF;
        r_idx := i; r_id := NULL; r_kind := NULL; r_debit := NULL; r_credit := NULL; r_asset := NULL;
        r_amount := NULL; r_pending_key := NULL; r_created_at := NULL;

        IF p_kinds[i] IN ('single', 'pending') THEN
            SELECT * INTO d FROM accounts WHERE name = p_debits[i];
            SELECT * INTO c FROM accounts WHERE name = p_credits[i];
            IF d.asset <> p_assets[i] OR c.asset <> p_assets[i] THEN
                r_status := 'asset_mismatch'; RETURN NEXT; CONTINUE;
            END IF;
            IF d.user_id IS NOT NULL AND
               d.posted_credits_minor - d.posted_debits_minor - d.pending_debits_minor < p_amounts[i] THEN
                r_status := 'insufficient'; RETURN NEXT; CONTINUE;
            END IF;
            INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, pending_key, status,
                                   fingerprint, debit_user_id, credit_user_id)
            VALUES (p_keys[i], p_kinds[i], p_debits[i], p_credits[i], p_assets[i], p_amounts[i], NULL,
                    CASE WHEN p_kinds[i] = 'single' THEN 'posted' ELSE 'pending' END,
                    p_fingerprints[i], p_debit_users[i], p_credit_users[i])
            ON CONFLICT DO NOTHING RETURNING id, created_at INTO new_id, new_at;
            IF new_id IS NULL THEN  -- another transaction committed this key meanwhile
                SELECT * INTO t FROM transfers WHERE key = p_keys[i];
                r_status := CASE WHEN t.fingerprint = p_fingerprints[i] THEN 'replay' ELSE 'conflict' END;
                r_id := t.id; r_kind := t.kind; r_debit := t.debit; r_credit := t.credit; r_asset := t.asset;
                r_amount := t.amount_minor; r_pending_key := t.pending_key; r_created_at := t.created_at;
                RETURN NEXT; CONTINUE;
            END IF;
            IF p_kinds[i] = 'single' THEN
                UPDATE accounts SET posted_debits_minor = posted_debits_minor + p_amounts[i] WHERE name = p_debits[i];
                UPDATE accounts SET posted_credits_minor = posted_credits_minor + p_amounts[i] WHERE name = p_credits[i];
            ELSE
                UPDATE accounts SET pending_debits_minor = pending_debits_minor + p_amounts[i] WHERE name = p_debits[i];
                UPDATE accounts SET pending_credits_minor = pending_credits_minor + p_amounts[i] WHERE name = p_credits[i];
            END IF;
            r_status := 'ok'; r_id := new_id; r_kind := p_kinds[i]; r_debit := p_debits[i];
            r_credit := p_credits[i]; r_asset := p_assets[i]; r_amount := p_amounts[i]; r_created_at := new_at;
        ELSE
            SELECT * INTO h FROM transfers WHERE key = p_pending_keys[i] AND kind = 'pending' FOR UPDATE;
            IF NOT FOUND THEN r_status := 'not_found'; RETURN NEXT; CONTINUE; END IF;
            IF h.status <> 'pending' THEN r_status := 'resolved'; RETURN NEXT; CONTINUE; END IF;
            amt := CASE WHEN p_kinds[i] = 'void' THEN h.amount_minor ELSE coalesce(p_amounts[i], h.amount_minor) END;
            IF amt > h.amount_minor THEN r_status := 'too_much'; RETURN NEXT; CONTINUE; END IF;
            INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, pending_key, status,
                                   fingerprint, debit_user_id, credit_user_id)
            VALUES (p_keys[i], p_kinds[i], h.debit, h.credit, h.asset, amt, h.key,
                    CASE WHEN p_kinds[i] = 'post' THEN 'posted' ELSE 'voided' END,
                    p_fingerprints[i], h.debit_user_id, h.credit_user_id)
            ON CONFLICT DO NOTHING RETURNING id, created_at INTO new_id, new_at;
            IF new_id IS NULL THEN
                SELECT * INTO t FROM transfers WHERE key = p_keys[i];
                IF NOT FOUND THEN r_status := 'resolved'; RETURN NEXT; CONTINUE; END IF;
                r_status := CASE WHEN t.fingerprint = p_fingerprints[i] THEN 'replay' ELSE 'conflict' END;
                r_id := t.id; r_kind := t.kind; r_debit := t.debit; r_credit := t.credit; r_asset := t.asset;
                r_amount := t.amount_minor; r_pending_key := t.pending_key; r_created_at := t.created_at;
                RETURN NEXT; CONTINUE;
            END IF;
            UPDATE transfers SET status = CASE WHEN p_kinds[i] = 'post' THEN 'posted' ELSE 'voided' END
             WHERE id = h.id;
            UPDATE accounts SET pending_debits_minor = pending_debits_minor - h.amount_minor,
                   posted_debits_minor = posted_debits_minor + CASE WHEN p_kinds[i] = 'post' THEN amt ELSE 0 END
             WHERE name = h.debit;
            UPDATE accounts SET pending_credits_minor = pending_credits_minor - h.amount_minor,
                   posted_credits_minor = posted_credits_minor + CASE WHEN p_kinds[i] = 'post' THEN amt ELSE 0 END
             WHERE name = h.credit;
            r_status := 'ok'; r_id := new_id; r_kind := p_kinds[i]; r_debit := h.debit; r_credit := h.credit;
            r_asset := h.asset; r_amount := amt; r_pending_key := h.key; r_created_at := new_at;
        END IF;
        ok := ok || i;
        RETURN NEXT;
    END LOOP;

    IF array_length(p_event_idx, 1) > 0 THEN
        INSERT INTO outbox (type, payload)
        SELECT e.ty, e.pl FROM unnest(p_event_idx, p_event_types, p_event_payloads) WITH ORDINALITY AS e(ix, ty, pl, o)
         WHERE e.ix = ANY(ok) ORDER BY e.o;
    END IF;
END
$fn$;
"""

# Version 2, same arguments and result, installed by ``PostgresStore`` at open (see there).
# Why: v1 ran six statements per transfer and UPDATEd a busy account (``bank:irt``) once per
# transfer, so every later read of that row in the batch walked a growing chain of row versions.
# v2 reads the batch's locked accounts once into arrays, tracks their balances in the arrays (the
# overdraft check reads them), inserts each transfer with one statement, and writes every touched
# account once at the end. Idempotency is still the unique key: a key found up front (one indexed
# lookup of all keys) or hit by ``ON CONFLICT`` is a replay or a conflict and moves nothing.
APPLY_TRANSFERS_V2_SQL = r"""
CREATE OR REPLACE FUNCTION teller_apply_transfers_v2(
    p_kinds text[], p_keys text[], p_debits text[], p_credits text[], p_assets text[],
    p_amounts numeric[], p_pending_keys text[], p_fingerprints text[],
    p_debit_users bigint[], p_credit_users bigint[],
    p_event_idx int[], p_event_types text[], p_event_payloads text[])
RETURNS TABLE (r_idx int, r_status text, r_id bigint, r_kind text, r_debit text, r_credit text,
               r_asset text, r_amount numeric, r_pending_key text, r_created_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    n int := coalesce(array_length(p_keys, 1), 0);
    i int;
    t transfers%ROWTYPE;
    h transfers%ROWTYPE;
    amt numeric;
    new_id bigint;
    new_at timestamptz;
    okf boolean[] := array_fill(false, ARRAY[greatest(n, 1)]);
    existing text[];
    a_names text[]; a_assets text[]; a_users bigint[];
    a_pd numeric[]; a_pc numeric[]; a_ped numeric[]; a_pec numeric[];
    dpos int[]; cpos int[];
    dp int; cp int;
BEGIN
    -- Keys never go away: if every key of the batch exists, all are replays or conflicts, answered
    -- from the rows with no account created, locked or written.
    existing := ARRAY(SELECT tr.key FROM transfers tr WHERE tr.key = ANY(p_keys));
    IF cardinality(existing) > 0 AND cardinality(existing) = (SELECT count(DISTINCT k) FROM unnest(p_keys) AS k) THEN
        RETURN QUERY
        SELECT x.o::int, CASE WHEN tr.fingerprint = x.fp THEN 'replay' ELSE 'conflict' END, tr.id, tr.kind,
               tr.debit, tr.credit, tr.asset, tr.amount_minor, tr.pending_key, tr.created_at
          FROM unnest(p_keys, p_fingerprints) WITH ORDINALITY AS x(k, fp, o) JOIN transfers tr ON tr.key = x.k
         ORDER BY x.o;
        RETURN;
    END IF;
    INSERT INTO accounts (name, asset, user_id)
    SELECT DISTINCT ON (nm) nm, a, u FROM (
        SELECT * FROM unnest(p_debits, p_assets, p_debit_users) AS x(nm, a, u)
        UNION ALL SELECT * FROM unnest(p_credits, p_assets, p_credit_users) AS y(nm, a, u)
    ) s WHERE nm IS NOT NULL ORDER BY nm
    ON CONFLICT (name) DO NOTHING;
    -- Lock every account of the batch in one global order and read their balances once.
    SELECT array_agg(l.name), array_agg(l.asset), array_agg(l.user_id), array_agg(l.posted_debits_minor),
           array_agg(l.posted_credits_minor), array_agg(l.pending_debits_minor), array_agg(l.pending_credits_minor)
      INTO a_names, a_assets, a_users, a_pd, a_pc, a_ped, a_pec
      FROM (SELECT * FROM accounts WHERE name IN (
                SELECT unnest(p_debits) UNION SELECT unnest(p_credits)
                UNION SELECT tr.debit FROM transfers tr WHERE tr.key = ANY(p_pending_keys) AND tr.kind = 'pending'
                UNION SELECT tr.credit FROM transfers tr WHERE tr.key = ANY(p_pending_keys) AND tr.kind = 'pending'
            ) ORDER BY name FOR UPDATE) l;
    SELECT array_agg(dn.pos ORDER BY x.o), array_agg(cn.pos ORDER BY x.o) INTO dpos, cpos
      FROM unnest(p_debits, p_credits) WITH ORDINALITY AS x(dnm, cnm, o)
      LEFT JOIN unnest(a_names) WITH ORDINALITY AS dn(nm, pos) ON dn.nm = x.dnm
      LEFT JOIN unnest(a_names) WITH ORDINALITY AS cn(nm, pos) ON cn.nm = x.cnm;

    FOR i IN 1..n LOOP
        r_idx := i; r_id := NULL; r_kind := NULL; r_debit := NULL; r_credit := NULL; r_asset := NULL;
        r_amount := NULL; r_pending_key := NULL; r_created_at := NULL; new_id := NULL;
        IF cardinality(existing) > 0 AND p_keys[i] = ANY(existing) THEN
            SELECT * INTO t FROM transfers WHERE key = p_keys[i];
            r_status := CASE WHEN t.fingerprint = p_fingerprints[i] THEN 'replay' ELSE 'conflict' END;
            r_id := t.id; r_kind := t.kind; r_debit := t.debit; r_credit := t.credit; r_asset := t.asset;
            r_amount := t.amount_minor; r_pending_key := t.pending_key; r_created_at := t.created_at;
            RETURN NEXT; CONTINUE;
        END IF;

        IF p_kinds[i] IN ('single', 'pending') THEN
            dp := dpos[i]; cp := cpos[i];
            IF a_assets[dp] <> p_assets[i] OR a_assets[cp] <> p_assets[i]
               OR (a_users[dp] IS NOT NULL AND a_pc[dp] - a_pd[dp] - a_ped[dp] < p_amounts[i]) THEN
                -- a key written earlier in this batch, or committed by another transaction since
                -- our look-up, is still a replay (or a conflict), as on SQLite
                SELECT * INTO t FROM transfers WHERE key = p_keys[i];
                IF NOT FOUND THEN
                    r_status := CASE WHEN a_assets[dp] <> p_assets[i] OR a_assets[cp] <> p_assets[i]
                                     THEN 'asset_mismatch' ELSE 'insufficient' END;
                    RETURN NEXT; CONTINUE;
                END IF;
            ELSE
                INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, pending_key, status,
                                       fingerprint, debit_user_id, credit_user_id)
                VALUES (p_keys[i], p_kinds[i], p_debits[i], p_credits[i], p_assets[i], p_amounts[i], NULL,
                        CASE WHEN p_kinds[i] = 'single' THEN 'posted' ELSE 'pending' END,
                        p_fingerprints[i], p_debit_users[i], p_credit_users[i])
                ON CONFLICT DO NOTHING RETURNING id, created_at INTO new_id, new_at;
                IF new_id IS NULL THEN  -- this key was committed meanwhile, or earlier in this batch
                    SELECT * INTO t FROM transfers WHERE key = p_keys[i];
                END IF;
            END IF;
            IF new_id IS NULL THEN
                r_status := CASE WHEN t.fingerprint = p_fingerprints[i] THEN 'replay' ELSE 'conflict' END;
                r_id := t.id; r_kind := t.kind; r_debit := t.debit; r_credit := t.credit; r_asset := t.asset;
                r_amount := t.amount_minor; r_pending_key := t.pending_key; r_created_at := t.created_at;
                RETURN NEXT; CONTINUE;
            END IF;
            IF p_kinds[i] = 'single' THEN
                a_pd[dp] := a_pd[dp] + p_amounts[i];
                a_pc[cp] := a_pc[cp] + p_amounts[i];
            ELSE
                a_ped[dp] := a_ped[dp] + p_amounts[i];
                a_pec[cp] := a_pec[cp] + p_amounts[i];
            END IF;
            r_status := 'ok'; r_id := new_id; r_kind := p_kinds[i]; r_debit := p_debits[i];
            r_credit := p_credits[i]; r_asset := p_assets[i]; r_amount := p_amounts[i]; r_created_at := new_at;
        ELSE
            SELECT * INTO h FROM transfers WHERE key = p_pending_keys[i] AND kind = 'pending' FOR UPDATE;
            IF NOT FOUND THEN r_status := 'not_found'; RETURN NEXT; CONTINUE; END IF;
            IF h.status <> 'pending' THEN
                -- resolved by a transaction that committed after our look-up: if it was this very key
                -- (another process settling the same step), it is a replay, as on SQLite
                SELECT * INTO t FROM transfers WHERE key = p_keys[i];
                IF NOT FOUND THEN r_status := 'resolved'; RETURN NEXT; CONTINUE; END IF;
                r_status := CASE WHEN t.fingerprint = p_fingerprints[i] THEN 'replay' ELSE 'conflict' END;
                r_id := t.id; r_kind := t.kind; r_debit := t.debit; r_credit := t.credit; r_asset := t.asset;
                r_amount := t.amount_minor; r_pending_key := t.pending_key; r_created_at := t.created_at;
                RETURN NEXT; CONTINUE;
            END IF;
            amt := CASE WHEN p_kinds[i] = 'void' THEN h.amount_minor ELSE coalesce(p_amounts[i], h.amount_minor) END;
            IF amt > h.amount_minor THEN r_status := 'too_much'; RETURN NEXT; CONTINUE; END IF;
            INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, pending_key, status,
                                   fingerprint, debit_user_id, credit_user_id)
            VALUES (p_keys[i], p_kinds[i], h.debit, h.credit, h.asset, amt, h.key,
                    CASE WHEN p_kinds[i] = 'post' THEN 'posted' ELSE 'voided' END,
                    p_fingerprints[i], h.debit_user_id, h.credit_user_id)
            ON CONFLICT DO NOTHING RETURNING id, created_at INTO new_id, new_at;
            IF new_id IS NULL THEN
                SELECT * INTO t FROM transfers WHERE key = p_keys[i];
                IF NOT FOUND THEN r_status := 'resolved'; RETURN NEXT; CONTINUE; END IF;
                r_status := CASE WHEN t.fingerprint = p_fingerprints[i] THEN 'replay' ELSE 'conflict' END;
                r_id := t.id; r_kind := t.kind; r_debit := t.debit; r_credit := t.credit; r_asset := t.asset;
                r_amount := t.amount_minor; r_pending_key := t.pending_key; r_created_at := t.created_at;
                RETURN NEXT; CONTINUE;
            END IF;
            UPDATE transfers SET status = CASE WHEN p_kinds[i] = 'post' THEN 'posted' ELSE 'voided' END
             WHERE id = h.id;
            dp := array_position(a_names, h.debit); cp := array_position(a_names, h.credit);
            a_ped[dp] := a_ped[dp] - h.amount_minor;
            a_pec[cp] := a_pec[cp] - h.amount_minor;
            IF p_kinds[i] = 'post' THEN
                a_pd[dp] := a_pd[dp] + amt;
                a_pc[cp] := a_pc[cp] + amt;
            END IF;
            r_status := 'ok'; r_id := new_id; r_kind := p_kinds[i]; r_debit := h.debit; r_credit := h.credit;
            r_asset := h.asset; r_amount := amt; r_pending_key := h.key; r_created_at := new_at;
        END IF;
        okf[i] := true;
        RETURN NEXT;
    END LOOP;

    -- Every account the batch moved, written once.
    UPDATE accounts a SET posted_debits_minor = u.pd, posted_credits_minor = u.pc,
                          pending_debits_minor = u.ped, pending_credits_minor = u.pec
      FROM unnest(a_names, a_pd, a_pc, a_ped, a_pec) AS u(nm, pd, pc, ped, pec)
     WHERE a.name = u.nm
       AND (a.posted_debits_minor, a.posted_credits_minor, a.pending_debits_minor, a.pending_credits_minor)
           IS DISTINCT FROM (u.pd, u.pc, u.ped, u.pec);

    IF array_length(p_event_idx, 1) > 0 THEN
        INSERT INTO outbox (type, payload)
        SELECT e.ty, e.pl FROM unnest(p_event_idx, p_event_types, p_event_payloads) WITH ORDINALITY AS e(ix, ty, pl, o)
         WHERE okf[e.ix] ORDER BY e.o;
    END IF;
END
$fn$;
"""

# The common batch, set-based: only new money moves (kinds ``single`` and ``pending``, no post or
# void, which need a hold row written earlier in the same batch). Same arguments and result as
# v2. Each transfer is decided in a loop over arrays only (no statement per transfer), then the
# accepted ones are inserted with one INSERT, the accounts written with one UPDATE, the events
# with one INSERT, and the results read back with one join on the keys. Should another
# transaction commit one of our keys between our look-up and our INSERT (possible only with
# accounts disjoint from ours, since ours are locked), the whole batch fails with a
# serialization failure and the caller retries it; then that key is found up front.
APPLY_MOVES_SQL = r"""
CREATE OR REPLACE FUNCTION teller_apply_moves(
    p_kinds text[], p_keys text[], p_debits text[], p_credits text[], p_assets text[],
    p_amounts numeric[], p_pending_keys text[], p_fingerprints text[],
    p_debit_users bigint[], p_credit_users bigint[],
    p_event_idx int[], p_event_types text[], p_event_payloads text[])
RETURNS TABLE (r_idx int, r_status text, r_id bigint, r_kind text, r_debit text, r_credit text,
               r_asset text, r_amount numeric, r_pending_key text, r_created_at timestamptz)
LANGUAGE plpgsql SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    n int := coalesce(array_length(p_keys, 1), 0);
    i int;
    existing text[];
    a_names text[]; a_assets text[]; a_users bigint[];
    a_pd numeric[]; a_pc numeric[]; a_ped numeric[]; a_pec numeric[];
    dpos int[]; cpos int[]; grp int[];
    won int[];
    st text[] := array_fill(NULL::text, ARRAY[greatest(n, 1)]);
    dp int; cp int;
    accepted int := 0;
    inserted int;
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(p_kinds) AS k WHERE k NOT IN ('single', 'pending')) THEN
        RAISE EXCEPTION 'teller_apply_moves takes only single and pending transfers';
    END IF;
    existing := ARRAY(SELECT tr.key FROM transfers tr WHERE tr.key = ANY(p_keys));
    IF cardinality(existing) > 0 AND cardinality(existing) = (SELECT count(DISTINCT k) FROM unnest(p_keys) AS k) THEN
        RETURN QUERY
        SELECT x.o::int, CASE WHEN tr.fingerprint = x.fp THEN 'replay' ELSE 'conflict' END, tr.id, tr.kind,
               tr.debit, tr.credit, tr.asset, tr.amount_minor, tr.pending_key, tr.created_at
          FROM unnest(p_keys, p_fingerprints) WITH ORDINALITY AS x(k, fp, o) JOIN transfers tr ON tr.key = x.k
         ORDER BY x.o;
        RETURN;
    END IF;
    INSERT INTO accounts (name, asset, user_id)
    SELECT DISTINCT ON (nm) nm, a, u FROM (
        SELECT * FROM unnest(p_debits, p_assets, p_debit_users) AS x(nm, a, u)
        UNION ALL SELECT * FROM unnest(p_credits, p_assets, p_credit_users) AS y(nm, a, u)
    ) s WHERE nm IS NOT NULL ORDER BY nm
    ON CONFLICT (name) DO NOTHING;
    SELECT array_agg(l.name), array_agg(l.asset), array_agg(l.user_id), array_agg(l.posted_debits_minor),
           array_agg(l.posted_credits_minor), array_agg(l.pending_debits_minor), array_agg(l.pending_credits_minor)
      INTO a_names, a_assets, a_users, a_pd, a_pc, a_ped, a_pec
      FROM (SELECT * FROM accounts WHERE name IN (SELECT unnest(p_debits) UNION SELECT unnest(p_credits))
            ORDER BY name FOR UPDATE) l;
    -- After the locks: a key committed meanwhile by a transaction on our accounts is seen now.
    existing := ARRAY(SELECT tr.key FROM transfers tr WHERE tr.key = ANY(p_keys));
    SELECT array_agg(dn.pos ORDER BY x.o), array_agg(cn.pos ORDER BY x.o), array_agg(x.g ORDER BY x.o)
      INTO dpos, cpos, grp
      FROM (SELECT u.*, dense_rank() OVER (ORDER BY u.k) AS g
              FROM unnest(p_debits, p_credits, p_keys) WITH ORDINALITY AS u(dnm, cnm, k, o)) x
      LEFT JOIN unnest(a_names) WITH ORDINALITY AS dn(nm, pos) ON dn.nm = x.dnm
      LEFT JOIN unnest(a_names) WITH ORDINALITY AS cn(nm, pos) ON cn.nm = x.cnm;
    won := array_fill(0, ARRAY[greatest(n, 1)]);

    FOR i IN 1..n LOOP
        IF cardinality(existing) > 0 AND p_keys[i] = ANY(existing) THEN
            st[i] := 'known'; CONTINUE;
        END IF;
        IF won[grp[i]] > 0 THEN  -- the same key went in earlier in this batch
            st[i] := 'known'; CONTINUE;
        END IF;
        dp := dpos[i]; cp := cpos[i];
        IF a_assets[dp] <> p_assets[i] OR a_assets[cp] <> p_assets[i] THEN
            st[i] := 'asset_mismatch'; CONTINUE;
        END IF;
        IF a_users[dp] IS NOT NULL AND a_pc[dp] - a_pd[dp] - a_ped[dp] < p_amounts[i] THEN
            st[i] := 'insufficient'; CONTINUE;
        END IF;
        IF p_kinds[i] = 'single' THEN
            a_pd[dp] := a_pd[dp] + p_amounts[i];
            a_pc[cp] := a_pc[cp] + p_amounts[i];
        ELSE
            a_ped[dp] := a_ped[dp] + p_amounts[i];
            a_pec[cp] := a_pec[cp] + p_amounts[i];
        END IF;
        st[i] := 'ok'; won[grp[i]] := i; accepted := accepted + 1;
    END LOOP;

    IF accepted > 0 THEN
        INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, pending_key, status,
                               fingerprint, debit_user_id, credit_user_id)
        SELECT x.k, x.kind, x.d, x.c, x.a, x.m, NULL, CASE WHEN x.kind = 'single' THEN 'posted' ELSE 'pending' END,
               x.f, x.du, x.cu
          FROM unnest(p_keys, p_kinds, p_debits, p_credits, p_assets, p_amounts, p_fingerprints, p_debit_users,
                      p_credit_users, st) WITH ORDINALITY AS x(k, kind, d, c, a, m, f, du, cu, s, o)
         WHERE x.s = 'ok' ORDER BY x.o
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted <> accepted THEN
            RAISE EXCEPTION 'a ledger key was committed concurrently; retry the batch'
                USING ERRCODE = 'serialization_failure';
        END IF;
        UPDATE accounts a SET posted_debits_minor = u.pd, posted_credits_minor = u.pc,
                              pending_debits_minor = u.ped, pending_credits_minor = u.pec
          FROM unnest(a_names, a_pd, a_pc, a_ped, a_pec) AS u(nm, pd, pc, ped, pec)
         WHERE a.name = u.nm
           AND (a.posted_debits_minor, a.posted_credits_minor, a.pending_debits_minor, a.pending_credits_minor)
               IS DISTINCT FROM (u.pd, u.pc, u.ped, u.pec);
        IF array_length(p_event_idx, 1) > 0 THEN
            INSERT INTO outbox (type, payload)
            SELECT e.ty, e.pl FROM unnest(p_event_idx, p_event_types, p_event_payloads) WITH ORDINALITY AS e(ix, ty, pl, o)
             WHERE st[e.ix] = 'ok' ORDER BY e.o;
        END IF;
    END IF;

    RETURN QUERY
    SELECT x.o::int,
           CASE WHEN x.s = 'ok' THEN 'ok'
                WHEN x.s = 'known' THEN CASE WHEN tr.fingerprint = x.f THEN 'replay' ELSE 'conflict' END
                ELSE x.s END,
           tr.id, tr.kind, tr.debit, tr.credit, tr.asset, tr.amount_minor, tr.pending_key, tr.created_at
      FROM unnest(p_keys, p_fingerprints, st) WITH ORDINALITY AS x(k, f, s, o)
      LEFT JOIN transfers tr ON tr.key = x.k AND x.s IN ('ok', 'known')
     ORDER BY x.o;
END
$fn$;
"""
