"""What the HTTP layer is given: one immutable bundle of the running Teller's parts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from teller.assets import AssetRegistry
from teller.config import Settings
from teller.errors import FeatureDisabled, InvalidToken
from teller.http.auth import Authenticator, bearer_token
from teller.http.metrics import HttpMetrics

__all__ = ["Services", "SERVICES", "flow_service", "bearer_user_id"]


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: Any                      # teller.storage Store
    assets: AssetRegistry
    auth: Authenticator
    metrics: HttpMetrics
    tree: Any = None                # teller.runtime tree (status, handles)
    wallets: Callable[[str], Any] | None = None   # user id -> the user's wallet actor handle
    flows: dict[str, Any] = field(default_factory=dict)  # optional flow services by name
    extra_status: Callable[[], Any] | None = None  # per-chain head/lag, outbox backlog
    started_at_s: float = field(default_factory=time.monotonic)


SERVICES = web.AppKey("services", Services)


def flow_service(request: web.Request, name: str, what: str) -> Any:
    """The named flow's service, or 503 ``feature_disabled`` (``what`` are not configured here)."""
    service = request.app[SERVICES].flows.get(name)
    if service is None:
        raise FeatureDisabled(f"{what} are not configured on this server")
    return service


def bearer_user_id(request: web.Request) -> int:
    """The user of a ``Bearer`` token, for routes outside ``/api/v1/`` (``/dev/*``) that the middleware skips."""
    token = bearer_token(request.headers.get("Authorization"))
    subject = request.app[SERVICES].auth.user_id_from_token(token)
    if not subject.isascii() or not subject.isdigit():
        raise InvalidToken()
    return int(subject)
