"""A hostile ``?limit=`` is a 422 on every paged route, never a 500: a run of 5,000 digits made int() raise
(CPython refuses over 4,300 digits) before the range check. Found by an adversarial review."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.http import OPS_TOKEN
from tests.irt.conftest import IrtApp


@pytest.mark.parametrize("path", ["/api/v1/irt/deposits", "/api/v1/withdrawals", "/api/v1/deposits",
                                  "/api/v1/transactions", "/ops/irt/unmatched", "/ops/deposits/reversals"])
@pytest.mark.parametrize("limit", ["9" * 5000, "0" * 30 + "5", "١٠"])
async def test_a_hostile_limit_is_a_422_not_a_500(irt_app: IrtApp, log_stream: Any, path: str, limit: str) -> None:
    _, headers = await irt_app.user(8501)
    if path.startswith("/ops"):
        headers = {"Authorization": f"Bearer {OPS_TOKEN}"}
    response = await irt_app.client.get(path, params={"limit": limit}, headers=headers)
    assert response.status == 422, await response.text()
    assert (await response.json())["error"]["code"] == "invalid_input"
    assert "Traceback" not in log_stream.getvalue()
