"""Build the supervisor tree from settings, wire the flows and the HTTP server, run until stopped."""

from __future__ import annotations

import asyncio
import errno
import gc
import signal
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from teller.actors.wallet import WalletActor
from teller.assets import AssetRegistry
from teller.config import Settings
from teller.errors import StartFailed
from teller.flows import SLOTS, AppContext, Flow
from teller.http import Services, build_app
from teller.http.auth import Authenticator
from teller.http.metrics import HttpMetrics
from teller.log import endpoint_of, get_logger, redact_text
from teller.runtime import (
    Backoff,
    Intensity,
    KeyedSpec,
    Strategy,
    SupervisorSpec,
    Tree,
    start_tree,
)
from teller.storage import StorageError, open_store

__all__ = ["Teller", "start_teller", "run_with_settings", "run_dev", "FLOW_BUILDERS"]

WALLET_IDLE_TIMEOUT_S = 300.0
WALLETS_LIVE_MAX = 200_000
_log = get_logger(component="app")


def _flow_builders() -> list[Callable[[AppContext], Flow]]:
    """Every flow Teller knows; each decides from settings whether it is on."""
    builders: list[Callable[[AppContext], Flow]] = []
    # Each flow module registers itself here (imported late so one flow's import cost is its own).
    for module_name in ("signing", "deposits", "withdrawals", "irt", "events", "reconciler"):
        try:
            module = __import__(f"teller.flows.{module_name}", fromlist=["build"])
        except ModuleNotFoundError as exc:
            if exc.name != f"teller.flows.{module_name}":
                raise
            continue
        builders.append(module.build)
    return builders


FLOW_BUILDERS = _flow_builders


@dataclass
class Teller:
    """A running Teller: its store, tree, flows and web app (not yet listening)."""

    settings: Settings
    ctx: AppContext
    tree: Tree
    flows: list[Flow]
    app: web.Application
    metrics: HttpMetrics
    owns_store: bool = True  # False when the caller passed the store in: it stays the caller's to close

    async def stop(self) -> None:
        await self.tree.stop()
        for flow in reversed(self.flows):
            if flow.close is not None:
                try:
                    await flow.close()
                except Exception:  # closing one client must not keep the others open
                    _log.exception("flow.close_failed", flow=flow.name)
        if self.owns_store:
            await self.ctx.store.close()


def _root_spec(settings: Settings, flows: Sequence[Flow], store: Any) -> SupervisorSpec:
    by_slot: dict[str, list[Any]] = {slot: [] for slot in SLOTS}
    for flow in flows:
        for slot, specs in flow.children.items():
            if slot not in by_slot:
                raise ValueError(f"flow {flow.name} uses unknown slot {slot!r}")
            by_slot[slot].extend(specs)
    backoff = Backoff(base_s=0.05, max_s=5.0)
    children: list[Any] = [*by_slot["signer"]]
    children.append(SupervisorSpec(name="chains", strategy=Strategy.ONE_FOR_ONE, children=tuple(by_slot["chains"]),
                                   intensity=Intensity(restarts_max=10, period_s=10), backoff=backoff))
    children.append(SupervisorSpec(name="withdrawals", strategy=Strategy.ONE_FOR_ONE,
                                   children=tuple(by_slot["withdrawals"]),
                                   intensity=Intensity(restarts_max=10, period_s=10), backoff=backoff))
    children.append(KeyedSpec(name="wallets", factory=lambda user_id: WalletActor(user_id, store),
                              idle_timeout_s=WALLET_IDLE_TIMEOUT_S, live_max=WALLETS_LIVE_MAX))
    children.append(SupervisorSpec(name="payments", strategy=Strategy.REST_FOR_ONE,
                                   children=tuple(by_slot["payments"]),
                                   intensity=Intensity(restarts_max=10, period_s=10), backoff=backoff))
    children.extend(by_slot["outbox-relay"])
    children.extend(by_slot["notifier"])
    children.extend(by_slot["reconciler"])
    return SupervisorSpec(name="root", strategy=Strategy.ONE_FOR_ONE, children=tuple(children),
                          intensity=Intensity(restarts_max=20, period_s=10), backoff=backoff)


async def _open_store(url: str) -> Any:
    try:
        return await open_store(url)
    except (StorageError, OSError, sqlite3.Error) as exc:
        # A URL's userinfo holds the password: only its scheme://host:port (a SQLite path holds no secret).
        where = url if url.startswith("sqlite:") else endpoint_of(url)
        raise StartFailed(f"cannot open the database {where}: {redact_text(str(exc))}; "
                          "set database.url or TELLER_DATABASE_URL") from exc


async def start_teller(settings: Settings, *, overrides: Mapping[str, Any] | None = None,
                       store: Any = None) -> Teller:
    """Open storage, start the tree and build the web app. The caller serves ``teller.app``."""
    owns_store = store is None
    store = store if store is not None else await _open_store(settings.database.url)
    assets = AssetRegistry.from_settings(settings)
    ctx = AppContext(settings=settings, store=store, assets=assets, overrides=dict(overrides or {}))
    flows = [build(ctx) for build in FLOW_BUILDERS()]
    metrics = HttpMetrics()
    try:
        tree = await start_tree(_root_spec(settings, flows, store),
                                on_restart=lambda event: metrics.actor_restarts.labels(event.path).inc())
    except BaseException:
        if owns_store:  # a store the caller passed in stays the caller's to close
            await store.close()
        raise
    ctx.tree = tree
    flow_services = {name: svc for flow in flows for name, svc in flow.services.items()}

    async def extra_status() -> dict[str, Any]:
        doc: dict[str, Any] = {}
        backlog = await store.outbox.backlog()
        doc["outbox"] = {"backlog": backlog.size, "oldest_age_s": backlog.oldest_age_s}
        for flow in flows:
            if flow.status is not None:
                doc.update(await flow.status())
        doc.setdefault("chains", [])
        return doc

    services = Services(
        settings=settings, store=store, assets=assets, auth=Authenticator(settings.auth), metrics=metrics,
        tree=tree, wallets=ctx.wallet, flows=flow_services, extra_status=extra_status,
    )
    app = build_app(services, extra_routes=[route for flow in flows for route in flow.routes])
    return Teller(settings=settings, ctx=ctx, tree=tree, flows=flows, app=app, metrics=metrics,
                  owns_store=owns_store)


_LISTEN_SETTING = {errno.EADDRINUSE: "server.port or TELLER_PORT", errno.EACCES: "server.port or TELLER_PORT",
                   errno.EADDRNOTAVAIL: "server.host"}


async def run_with_settings(settings: Settings, *, overrides: Mapping[str, Any] | None = None,
                            on_listening: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM or until the root supervisor gives up; ``StartFailed`` if it cannot listen.
    ``on_listening`` runs once the port is open."""
    teller = await start_teller(settings, overrides=overrides)
    runner = web.AppRunner(teller.app, access_log=None, shutdown_timeout=5.0)
    host, port = settings.server.host, settings.server.port
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
    except (OSError, OverflowError) as exc:  # OverflowError: a port past 65535
        await runner.cleanup()
        await teller.stop()
        raise StartFailed.cannot_listen(exc, host=host, port=port, setting=_LISTEN_SETTING.get(
            getattr(exc, "errno", None) or 0, "server.host and server.port (TELLER_PORT)")) from exc
    except BaseException:
        await runner.cleanup()
        await teller.stop()
        raise
    # Everything imported and built at start-up lives for the whole run: move it out of the GC's
    # generations, so that collections stop rescanning it (aiogram's models alone are ~1M objects).
    gc.collect()
    gc.freeze()
    _log.info("teller.started", host=host, port=port,
              chains=[c.name for c in settings.chains], database=settings.database.url.split(":", 1)[0])
    if on_listening is not None:
        on_listening()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    failed = asyncio.ensure_future(teller.tree.failed.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({failed, stopping}, return_when=asyncio.FIRST_COMPLETED)
    _log.info("teller.stopping", reason="root supervisor failed" if failed.done() else "signal")
    for task in (failed, stopping):
        task.cancel()
    await runner.cleanup()
    await teller.stop()
    if failed.done() and not failed.cancelled():
        raise SystemExit(1)


async def run_dev(*, var_dir: str) -> None:
    from teller.devmode import dev_banner, dev_environment

    async with dev_environment(var_dir=var_dir) as (settings, overrides):
        banner = dev_banner(settings, var_dir=var_dir)
        await run_with_settings(settings, overrides=overrides,
                                on_listening=lambda: print(banner, file=sys.stderr))
