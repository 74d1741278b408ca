"""The gauges read off the /ops/status document: each rendered from its key, none from an absent one."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from teller.http.metrics import HttpMetrics

FULL_DOC: dict[str, Any] = {
    "reconciler": {"last_run_at": "2026-12-01T10:00:00Z", "last_ok": False, "pending_receipts": 2,
                   "violations": [{"kind": "ledger"}, {"kind": "withdrawal"}, {"kind": "deposit"}]},
    "withdrawals": {"chains": [{"chain": "ethereum", "parked": 2, "incidents": 1, "frozen": True},
                               {"chain": "bsc", "parked": 0, "incidents": 0, "frozen": False}]},
    "freezes": {"active": 4, "items": []},
    "deposit_reversals": {"open": 3, "items": []},
}


def samples(doc: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics = HttpMetrics()
    metrics.observe_status(doc)
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_every_status_key_becomes_its_gauge() -> None:
    found = samples(FULL_DOC)
    assert found[("teller_reconcile_last_run_timestamp_seconds", ())] == 1796119200.0
    assert found[("teller_reconcile_ok", ())] == 0
    assert found[("teller_reconcile_violations", ())] == 3
    assert found[("teller_reconcile_pending_receipts", ())] == 2
    assert found[("teller_withdrawals_parked", (("chain", "ethereum"),))] == 2
    assert found[("teller_withdrawals_parked", (("chain", "bsc"),))] == 0
    assert found[("teller_withdrawals_incidents", (("chain", "ethereum"),))] == 1
    assert found[("teller_freezes_active", ())] == 4
    assert found[("teller_deposit_reversals_open", ())] == 3
    ok = samples({"reconciler": {"last_run_at": "2026-12-01T10:00:00.500+00:00", "last_ok": True, "violations": []}})
    assert ok[("teller_reconcile_ok", ())] == 1 and ok[("teller_reconcile_violations", ())] == 0


def test_an_absent_or_malformed_key_renders_no_series() -> None:
    names = {name for name, _ in samples({})}
    assert not {n for n in names if n.startswith(("teller_reconcile", "teller_withdrawals", "teller_freezes",
                                                  "teller_deposit_reversals"))}
    odd = samples({"reconciler": {"last_run_at": None, "last_ok": None, "violations": "x"},
                   "withdrawals": {"chains": [{"parked": 1}, "x", {"chain": "a", "parked": "many"}]},
                   "freezes": [], "deposit_reversals": {"open": None}})
    assert not {n for n, _ in odd if n.startswith(("teller_reconcile", "teller_withdrawals", "teller_freezes",
                                                   "teller_deposit_reversals"))}


def test_each_scrape_shows_only_its_own_document() -> None:
    metrics = HttpMetrics()
    metrics.observe_status(FULL_DOC)
    metrics.observe_status({"freezes": {"active": 0}})
    text = metrics.render().decode()
    assert "teller_freezes_active 0.0" in text
    assert "teller_withdrawals_parked{" not in text and "teller_reconcile_ok " not in text
