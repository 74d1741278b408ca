"""Named mutations of Teller's money path, each a monkeypatch the simulator must kill (filled in below)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

__all__ = ["MUTATIONS", "applied"]

Mutation = Callable[[pytest.MonkeyPatch], None]
MUTATIONS: dict[str, Mutation] = {}


@contextmanager
def applied(name: str | None) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        if name is not None:
            MUTATIONS[name](patch)
        yield
