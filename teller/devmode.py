"""Dev mode (``teller --dev``): everything a newcomer needs, on this machine, with no configuration.

Starts a local anvil with a demo USDT token, the Paystar sandbox (which also serves the bank
statement), and builds settings for SQLite under ``var/``, Telegram messages to the log and
events in-process. ``TELLER_PORT`` and ``TELLER_DEV_SANDBOX_PORT`` move the two listening ports (a bad value
is a config error before anything starts). Secrets for dev (JWT key, ops token) are generated once into
``var/dev-secrets.json`` and reused, so tokens survive a restart. The signer uses a public dev
mnemonic, never a real one, and its hot wallet is funded from the dev faucet.

IRT: the sandbox's people include ``DEV_PERSON`` (synthetic: a national code, a mobile, a card and
an IBAN, printed at start). ``POST /dev/contact`` hands the signed-in dev user a contact carrying
that person's mobile, so the Mini App walks the real identity path outside Telegram: share the
contact, enter the national code, add the card and the IBAN, then append a statement line from
them to the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from teller.config import ConfigError, Settings, settings_from_mapping
from teller.errors import StartFailed
from teller.log import get_logger

__all__ = ["dev_environment", "dev_banner", "DEV_SIGNER_MNEMONIC", "DEV_CHAIN_ID", "DEV_BOT_TOKEN"]

# Public, well-known test phrase: dev funds only.
DEV_SIGNER_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
DEV_CHAIN_ID = 31337
DEV_BOT_TOKEN = "1234567:DEV-ONLY-bot-token"
DEV_PORT = 8080
DEV_SANDBOX_PORT = 8091
PORT_MAX = 65535
DEV_BLOCK_TIME_S = 1
HOT_WALLET_FUND_WEI = 1_000 * 10**18
HOT_WALLET_FUND_USDT_MINOR = 1_000_000 * 10**6
_log = get_logger(component="devmode")


def _dev_secrets(var_dir: Path) -> dict[str, str]:
    path = var_dir / "dev-secrets.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    values = {"jwt_secret": secrets.token_urlsafe(48), "ops_token": secrets.token_urlsafe(24)}
    return _write_secrets(path, values)


def _write_secrets(path: Path, values: dict[str, str]) -> dict[str, str]:
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _port_from_env(name: str, default: int) -> int:
    """A port from the environment. A bad value is a config error (the value not echoed), raised before
    anything starts."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 0 < int(text) <= PORT_MAX):
        raise ConfigError(f"{name} must be a port number (1 to {PORT_MAX})")
    return int(text)


def _with_card_hash_secret(var_dir: Path, values: dict[str, str]) -> dict[str, str]:
    """A dev-secrets.json from before issue 15 gains its own card-hash secret (never derived from the JWT's)."""
    if "card_hash_secret" in values:
        return values
    return _write_secrets(var_dir / "dev-secrets.json", {**values, "card_hash_secret": secrets.token_urlsafe(32)})


def dev_settings(*, var_dir: Path, port: int, rpc_url: str, token_address: str, sandbox: Any) -> Settings:
    dev_secrets = _with_card_hash_secret(var_dir, _dev_secrets(var_dir))
    return settings_from_mapping({
        "server": {"host": "127.0.0.1", "port": port, "node": "teller-dev"},
        "database": {"url": f"sqlite:///{var_dir / 'teller.db'}"},
        "auth": {"bot_token": DEV_BOT_TOKEN, "jwt_secret": dev_secrets["jwt_secret"],
                 "ops_token": dev_secrets["ops_token"], "dev": True},
        "signer": {"mnemonic": DEV_SIGNER_MNEMONIC, "hot_wallet_index": 0},
        "chains": [{
            "name": "ethereum", "chain_id": DEV_CHAIN_ID, "rpc_url": rpc_url, "confirmations": 3,
            "poll_interval_s": 1.0, "replace_after_s": 30.0,
            "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0.0005"},
            "tokens": [{"symbol": "USDT", "contract": token_address, "decimals": 6,
                        "min_withdrawal": "1", "withdrawal_fee": "0.5"}],
        }],
        "limits": {"withdrawal_daily_per_user": {"ethereum:USDT": "10000", "ethereum:ETH": "5"}},
        "paystar": {"base_url": sandbox.url, "application_id": sandbox.state.application_id,
                    "access_password": sandbox.state.access_password, "refresh_token": sandbox.state.refresh_token},
        "irt": {"company_iban": "IR820540102680020817909002", "account_owner": "Teller Dev Co",
                "bank": "Parsian", "statement_url": sandbox.url, "statement_poll_interval_s": 2.0,
                "card_hash_secret": dev_secrets["card_hash_secret"]},
        "telegram": {"mode": "off"},
    }, environ={})


def _dev_person_text(person: Any) -> str:
    """The dev person, in full on purpose: synthetic sandbox data a newcomer types into the Mini App.
    Printed in the banner only, never logged (no national code or mobile goes to a log line)."""
    return (f"{person.name}, national code {person.national_code}, mobile {person.mobile},"
            f" card {person.cards[0]}, IBAN {person.ibans[0]}")


def dev_banner(settings: Settings, *, var_dir: str) -> str:
    """What a newcomer reads once Teller listens: where the page is, where the ops token is, and the
    sandbox's person to walk the IRT flow as."""
    from teller.payments.sandbox_people import DEV_PERSON

    server = settings.server
    return (f"\nTeller dev: open http://{server.host}:{server.port}/ and use the dev sign-in."
            f"\nOps token: in {Path(var_dir) / 'dev-secrets.json'}"
            f"\nIRT sandbox person (synthetic): {_dev_person_text(DEV_PERSON)}\n")


@asynccontextmanager
async def dev_environment(*, var_dir: str) -> AsyncIterator[tuple[Settings, dict[str, Any]]]:
    """Start the dev chain and sandbox; yield (settings, overrides); stop them on exit."""
    from teller.chain.anvil import AnvilProcess, AnvilStartError
    from teller.chain.keys import HdWallet
    from teller.payments.sandbox import start_sandbox

    port = _port_from_env("TELLER_PORT", DEV_PORT)
    sandbox_port = _port_from_env("TELLER_DEV_SANDBOX_PORT", DEV_SANDBOX_PORT)
    root = Path(var_dir)
    root.mkdir(parents=True, exist_ok=True)
    anvil = AnvilProcess(chain_id=DEV_CHAIN_ID, block_time_s=DEV_BLOCK_TIME_S)
    try:
        await asyncio.to_thread(anvil.start)
    except AnvilStartError as exc:  # it stopped what it had spawned
        raise StartFailed(f"cannot start the dev chain (anvil): {exc}") from exc
    sandbox = None
    try:
        dev = anvil.dev
        token = await asyncio.to_thread(dev.deploy_demo_token)
        hot_wallet = HdWallet(DEV_SIGNER_MNEMONIC).address(0)
        await asyncio.to_thread(dev.set_balance, hot_wallet, HOT_WALLET_FUND_WEI)
        await asyncio.to_thread(dev.mint, token, to=hot_wallet, amount_minor=HOT_WALLET_FUND_USDT_MINOR)
        try:
            sandbox = await start_sandbox("127.0.0.1", sandbox_port)
        except OSError as exc:
            raise StartFailed.cannot_listen(exc, host="127.0.0.1", port=sandbox_port, what=" (the Paystar sandbox)",
                                            setting="TELLER_DEV_SANDBOX_PORT") from exc
        # anvil is new on every start: a chain from an earlier run is gone, so its DB is too.
        db_path = root / "teller.db"
        for stale in (db_path, root / "teller.db-wal", root / "teller.db-shm"):
            stale.unlink(missing_ok=True)
        settings = dev_settings(var_dir=root, port=port, rpc_url=anvil.url, token_address=token,
                                sandbox=sandbox)
        _log.info("devmode.ready", rpc_url=anvil.url, token=token, sandbox=sandbox.url, hot_wallet=hot_wallet,
                  mini_app=f"http://{settings.server.host}:{settings.server.port}/",
                  ops_token_file=str(root / "dev-secrets.json"))
        yield settings, {}
    finally:
        if sandbox is not None:
            await sandbox.close()
        await asyncio.to_thread(anvil.stop)
