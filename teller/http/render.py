"""Domain records to the JSON shapes of docs/API.md."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

__all__ = ["rfc3339", "field_of", "user_json"]


def rfc3339(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def field_of(record: Any, name: str) -> Any:
    """Read a field from a dataclass-like record or a row mapping."""
    if isinstance(record, dict):
        return record[name]
    try:
        return record[name]
    except (TypeError, KeyError):
        return getattr(record, name)


def user_json(user: Any) -> dict[str, Any]:
    return {
        "id": str(field_of(user, "id")),
        "telegram_id": int(field_of(user, "telegram_id")),
        "username": field_of(user, "username"),
        "first_name": field_of(user, "first_name") or "",
        "created_at": rfc3339(field_of(user, "created_at")),
    }
