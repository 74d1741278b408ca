"""The IRT flow: verified identities, cards and IBANs, bank-statement sync and matching, user and ops routes.

On when both ``[paystar]`` and ``[irt]`` are configured: PaymentMatcher then StatementSync under
the ``payments`` slot (rest_for_one: a matcher restart restarts the sync after it; the sync
re-reads its page from the stored cursor). StatementSync runs only when there is a statement
source (``irt.statement_url`` or ``overrides["statement_source"]``). Off, the routes still exist and
answer 503 ``feature_disabled``.

The card-hash keys are ``irt.card_hash_secret`` under ``irt.card_hash_key_id`` plus
``irt.card_hash_previous`` (config refuses a start without the secret when IRT is on; it is never
derived from another secret). In dev mode (``auth.dev``) the flow adds ``POST /dev/contact``,
imported only then: ``teller.http.dev_identity`` is not in a production process.

Overrides (tests): ``paystar`` (a PaystarClient-like object), ``statement_source`` (a
StatementSource), ``statement_page_max`` (int).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teller.actors.payment_matcher import PaymentMatcher
from teller.actors.statement_sync import CURSOR_NAME, PAGE_MAX_DEFAULT, StatementSync
from teller.config import IrtSettings, Settings
from teller.flows.base import AppContext, Flow
from teller.http.identity import routes as identity_routes
from teller.http.irt import routes as user_routes
from teller.http.ops_irt import routes as ops_routes
from teller.http.routing import Route
from teller.payments.card_keys import CardKeys
from teller.payments.paystar import PaystarClient
from teller.payments.registry import OwnerRegistry
from teller.payments.statement import HttpStatementSource
from teller.runtime import ChildSpec, Handle
from teller.storage.irt import LIST_LIMIT_MAX, IrtRepository

__all__ = ["build", "IrtService", "MATCHER_PATH", "SYNC_PATH", "card_keys"]

MATCHER_PATH = "payments/payment-matcher"
SYNC_PATH = "payments/statement-sync"


def card_keys(settings: Settings) -> CardKeys:
    """The configured card-hash keys (validated by the config: the secret is there and usable)."""
    assert settings.irt is not None
    irt = settings.irt
    return CardKeys.from_config(key_id=irt.card_hash_key_id, secret=irt.card_hash_secret,
                                previous=irt.card_hash_previous)


def _routes(settings: Settings) -> tuple[Route, ...]:
    found = (*identity_routes(), *user_routes(), *ops_routes())
    if settings.auth.dev:
        from teller.http.dev_identity import routes as dev_routes  # dev only: never imported in production

        found = (*found, *dev_routes())
    return found


@dataclass(slots=True)
class IrtService:
    """What the HTTP handlers use (``request.app[SERVICES].flows["irt"]``)."""

    ctx: AppContext
    irt: IrtSettings
    repo: IrtRepository
    registry: OwnerRegistry
    has_sync: bool

    def matcher(self) -> Handle:
        return self.ctx.handle(MATCHER_PATH)

    def sync(self) -> Handle:
        return self.ctx.handle(SYNC_PATH)


def build(ctx: AppContext) -> Flow:
    settings = ctx.settings
    routes = _routes(settings)
    if settings.paystar is None or settings.irt is None:
        return Flow(name="irt", routes=routes)
    irt = settings.irt
    keys = card_keys(settings)
    owned: list[Any] = []
    paystar = ctx.overrides.get("paystar")
    if paystar is None:
        paystar = PaystarClient(settings.paystar)
        owned.append(paystar)
    source = ctx.overrides.get("statement_source")
    if source is None and irt.statement_url:
        source = HttpStatementSource(irt.statement_url, timeout_s=settings.paystar.timeout_s,
                                     retries_max=settings.paystar.retries_max)
        owned.append(source)
    page_max = int(ctx.overrides.get("statement_page_max", PAGE_MAX_DEFAULT))
    store = ctx.store

    children: list[Any] = [ChildSpec(name="payment-matcher", factory=lambda: PaymentMatcher(
        store=store, wallet=ctx.wallet, keys=keys))]
    if source is not None:
        children.append(ChildSpec(name="statement-sync", factory=lambda: StatementSync(
            store=store, source=source, matcher=lambda: ctx.handle(MATCHER_PATH),
            poll_interval_s=irt.statement_poll_interval_s, page_max=page_max)))
    registry = OwnerRegistry(store=store, paystar=paystar, keys=keys)
    service = IrtService(ctx=ctx, irt=irt, repo=IrtRepository(store), registry=registry,
                         has_sync=source is not None)

    async def close() -> None:
        for client in owned:
            await client.close()

    async def status() -> dict[str, Any]:
        cursor = await service.repo.cursor(CURSOR_NAME) if service.has_sync else None
        # Counted up to one listing's bound: ops want "some" vs "none", the list has the rest.
        unmatched = len(await service.repo.unmatched(limit=LIST_LIMIT_MAX))
        # Cards hashed under a key id that is not configured can be neither found nor re-hashed.
        unknown_keys = {kid: n for kid, n in (await registry.owners.card_key_ids()).items() if kid not in keys.ids}
        return {"irt": {"statement_sync": service.has_sync, "statement_cursor": cursor,
                        "unmatched_lines": unmatched, "card_hash_key_id": keys.current_id,
                        "cards_under_unknown_keys": unknown_keys}}

    return Flow(name="irt", children={"payments": tuple(children)}, routes=routes,
                services={"irt": service}, status=status, close=close)
