"""Teller's HTTP gateway: the Mini App API, sign-in, ops endpoints and the Mini App page."""

from teller.http.context import SERVICES, Services
from teller.http.routing import Param, Route
from teller.http.server import build_app

__all__ = ["build_app", "Services", "SERVICES", "Route", "Param"]
