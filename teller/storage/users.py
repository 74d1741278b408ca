"""Users: one row per Telegram user, created on first sign-in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["User", "Users"]

NAME_LEN_MAX = 256


@dataclass(frozen=True, slots=True)
class User:
    id: int
    telegram_id: int
    username: str | None
    first_name: str
    created_at: datetime


class Users:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def get_or_create(self, *, telegram_id: int, username: str | None = None, first_name: str = "") -> User:
        """Race-safe: concurrent calls for one Telegram id give one user (a unique upsert).
        The latest username and first name are kept."""
        if type(telegram_id) is not int or telegram_id <= 0:  # noqa: E721
            raise ValueError("telegram_id must be a positive int")
        row = await self._store.fetch_one(
            "INSERT INTO users (telegram_id, username, first_name) VALUES (?, ?, ?)"
            " ON CONFLICT (telegram_id) DO UPDATE SET username = excluded.username, first_name = excluded.first_name"
            " RETURNING *",
            telegram_id, _clip(username), _clip(first_name) or "",
        )
        assert row is not None
        return _user(row)

    async def get(self, user_id: int) -> User | None:
        row = await self._store.fetch_one("SELECT * FROM users WHERE id = ?", user_id)
        return None if row is None else _user(row)

    async def get_by_telegram_id(self, telegram_id: int) -> User | None:
        row = await self._store.fetch_one("SELECT * FROM users WHERE telegram_id = ?", telegram_id)
        return None if row is None else _user(row)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:NAME_LEN_MAX]


def _user(row: dict[str, Any]) -> User:
    return User(id=row["id"], telegram_id=row["telegram_id"], username=row["username"],
                first_name=row["first_name"], created_at=row["created_at"])
