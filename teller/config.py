"""Teller's settings: one immutable object, loaded from TOML with secrets from the environment.

Unknown keys and missing required keys stop the start with a message that names the key; the
server never starts half-configured. Only ``[auth]`` is required; a flow whose section is absent
(no ``[[chains]]``, no ``[paystar]``) is off.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from teller.errors import InvalidAmount
from teller.events.schema import SUBJECT_PREFIX, check_subject_prefix
from teller.log import endpoint_of
from teller.money import parse_amount

__all__ = [
    "ConfigError",
    "Settings",
    "ServerSettings",
    "DatabaseSettings",
    "AuthSettings",
    "SignerSettings",
    "AssetSettings",
    "ChainSettings",
    "PaystarSettings",
    "IrtSettings",
    "TelegramSettings",
    "NatsSettings",
    "load_settings",
    "settings_from_mapping",
    "is_header_credential",
    "CREDENTIAL_LEN_MAX",
]

JWT_SECRET_LEN_MIN = 32
# What a credential sent in a header may be (teller.http.auth compares them as bytes): far above any
# token we issue or any secret an operator configures; aiohttp caps a header at 8190 bytes.
CREDENTIAL_LEN_MAX = 4096


def is_header_credential(value: str) -> bool:
    """1 to CREDENTIAL_LEN_MAX printable ASCII characters: what an HTTP header can carry intact."""
    return 0 < len(value) <= CREDENTIAL_LEN_MAX and value.isascii() and value.isprintable()
_TOML_POSITION = re.compile(r"\(at (line \d+, column \d+|end of document)\)")


class ConfigError(Exception):
    """The configuration is wrong; the message names the key."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    body_size_max_bytes: int = 64 * 1024
    rate_limit_per_user_per_s: float = 20.0
    rate_limit_per_ip_per_s: float = 50.0
    rate_limit_burst: int = 40
    upstream_timeout_s: float = 10.0
    node: str = "teller-1"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = "sqlite:///var/teller.db"

    def __repr__(self) -> str:  # URLs show scheme://host[:port] only (teller.log.endpoint_of): no password
        return f"DatabaseSettings(url={endpoint_of(self.url)!r})"


@dataclass(frozen=True, slots=True)
class AuthSettings:
    bot_token: str
    jwt_secret: str
    ops_token: str
    jwt_ttl_s: int = 900
    # Init data is good for signing in this long after Telegram issued it (auth_date). Telegram issues
    # fresh init data every time the wallet is opened, so it is needed only at the opening and to sign
    # in again when a JWT (jwt_ttl_s) runs out while the wallet stays open; an hour covers a long
    # session. Anyone who gets hold of init data (a shared link, a screenshot, a log) can sign in as
    # its user until then, so it is kept short (it was 24 h).
    init_data_max_age_s: int = 3600
    gateway_secret: str = ""
    dev: bool = False

    def __repr__(self) -> str:  # secrets never reach a log line or a traceback
        return f"AuthSettings(jwt_ttl_s={self.jwt_ttl_s}, dev={self.dev}, secrets=<hidden>)"


@dataclass(frozen=True, slots=True)
class SignerSettings:
    mnemonic: str = ""
    keystore: str = ""
    password: str = ""
    hot_wallet_index: int = 0

    def __repr__(self) -> str:
        return f"SignerSettings(keystore={self.keystore!r}, hot_wallet_index={self.hot_wallet_index})"


@dataclass(frozen=True, slots=True)
class AssetSettings:
    symbol: str
    decimals: int
    contract: str | None
    min_withdrawal_minor: int
    withdrawal_fee_minor: int


@dataclass(frozen=True, slots=True)
class ChainSettings:
    name: str
    chain_id: int
    rpc_url: str
    native: AssetSettings
    tokens: tuple[AssetSettings, ...] = ()
    confirmations: int = 12
    poll_interval_s: float = 2.0
    rpc_timeout_s: float = 10.0
    catchup_range_blocks: int = 500
    max_fee_per_gas_cap_wei: int = 500 * 10**9
    replace_after_s: float = 60.0

    def __repr__(self) -> str:  # the RPC URL's path or query holds the provider's API key
        rpc_url = endpoint_of(self.rpc_url)
        return f"ChainSettings(name={self.name!r}, chain_id={self.chain_id}, rpc_url={rpc_url!r})"

    @property
    def assets(self) -> tuple[AssetSettings, ...]:
        return (self.native, *self.tokens)

    def asset(self, symbol: str) -> AssetSettings | None:
        return next((a for a in self.assets if a.symbol == symbol), None)


@dataclass(frozen=True, slots=True)
class PaystarSettings:
    base_url: str
    application_id: str
    access_password: str
    refresh_token: str
    timeout_s: float = 10.0
    retries_max: int = 2

    def __repr__(self) -> str:
        return f"PaystarSettings(base_url={endpoint_of(self.base_url)!r}, secrets=<hidden>)"


@dataclass(frozen=True, slots=True)
class IrtSettings:
    company_iban: str
    account_owner: str
    bank: str
    statement_url: str = ""
    statement_poll_interval_s: float = 30.0
    card_hash_secret: str = ""  # TELLER_IRT_CARD_HASH_SECRET; required when IRT is on ([paystar] and [irt])
    card_hash_key_id: str = "k1"  # the id stored beside every hash made with card_hash_secret
    # [irt.card_hash_previous] key id = secret: older keys, still found, re-hashed on the next match.
    # TELLER_IRT_CARD_HASH_PREVIOUS: the same as a JSON object.
    card_hash_previous: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # the card hash secrets never reach a log line
        statement_url = endpoint_of(self.statement_url)
        return f"IrtSettings(company_iban={self.company_iban!r}, statement_url={statement_url!r}, secrets=<hidden>)"


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    api_base: str = "https://api.telegram.org"
    mode: str = "off"
    webhook_secret: str = ""       # the X-Telegram-Bot-Api-Secret-Token header (Telegram's secret_token)
    webhook_path_secret: str = ""  # the webhook URL's last segment; must differ from webhook_secret
    mini_app_url: str = ""

    def __repr__(self) -> str:
        api_base = endpoint_of(self.api_base)
        return f"TelegramSettings(api_base={api_base!r}, mode={self.mode!r}, secrets=<hidden>)"


@dataclass(frozen=True, slots=True)
class NatsSettings:
    url: str = ""
    stream: str = "TELLER"
    subject_prefix: str = SUBJECT_PREFIX  # events go to "<subject_prefix>.<type>"; "teller.events" before issue 15

    def __repr__(self) -> str:  # nats://user:password@host
        return f"NatsSettings(url={endpoint_of(self.url)!r}, stream={self.stream!r}, " \
               f"subject_prefix={self.subject_prefix!r})"


@dataclass(frozen=True, slots=True)
class Settings:
    auth: AuthSettings
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    signer: SignerSettings = field(default_factory=SignerSettings)
    chains: tuple[ChainSettings, ...] = ()
    withdrawal_daily_limits_minor: Mapping[str, int] = field(default_factory=dict)
    paystar: PaystarSettings | None = None
    irt: IrtSettings | None = None
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    nats: NatsSettings = field(default_factory=NatsSettings)

    def chain(self, name: str) -> ChainSettings | None:
        return next((c for c in self.chains if c.name == name), None)


# Environment overrides: (section, key) -> variable.
_ENV = {
    ("server", "port"): "TELLER_PORT",
    ("database", "url"): "TELLER_DATABASE_URL",
    ("auth", "bot_token"): "TELLER_BOT_TOKEN",
    ("auth", "jwt_secret"): "TELLER_JWT_SECRET",
    ("auth", "gateway_secret"): "TELLER_GATEWAY_SECRET",
    ("auth", "ops_token"): "TELLER_OPS_TOKEN",
    ("signer", "mnemonic"): "TELLER_SIGNER_MNEMONIC",
    ("signer", "password"): "TELLER_SIGNER_PASSWORD",
    ("paystar", "access_password"): "TELLER_PAYSTAR_PASSWORD",
    ("paystar", "refresh_token"): "TELLER_PAYSTAR_REFRESH_TOKEN",
    ("irt", "card_hash_secret"): "TELLER_IRT_CARD_HASH_SECRET",
    ("irt", "card_hash_previous"): "TELLER_IRT_CARD_HASH_PREVIOUS",
    ("telegram", "api_base"): "TELLER_TELEGRAM_API",
    ("telegram", "webhook_secret"): "TELLER_TELEGRAM_WEBHOOK_SECRET",
    ("telegram", "webhook_path_secret"): "TELLER_TELEGRAM_WEBHOOK_PATH_SECRET",
    ("nats", "url"): "TELLER_NATS_URL",
}
_SECTIONS = {"server", "database", "auth", "signer", "chains", "limits", "paystar", "irt", "telegram", "nats"}


def load_settings(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Settings:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        # tomllib's text can quote the character it stopped at, which may be part of a secret: the position only
        where = _TOML_POSITION.search(str(exc))
        raise ConfigError(f"{path}: not valid TOML ({where.group(1) if where else 'position unknown'})") from None
    return settings_from_mapping(raw, environ=os.environ if environ is None else environ)


def settings_from_mapping(raw: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> Settings:
    raw = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in raw.items()}
    for key in raw:
        if key not in _SECTIONS:
            raise ConfigError(f"unknown configuration section: [{key}]")
    for (section, key), var in _ENV.items():
        if environ and environ.get(var):
            raw.setdefault(section, {})[key] = environ[var]
    if isinstance(raw.get("irt"), dict) and "card_hash_previous" in raw["irt"]:
        raw["irt"]["card_hash_previous"] = _card_keys_previous(raw["irt"]["card_hash_previous"])
    settings = Settings(
        auth=_build(AuthSettings, raw, "auth", required=True),
        server=_build(ServerSettings, raw, "server"),
        database=_build(DatabaseSettings, raw, "database"),
        signer=_build(SignerSettings, raw, "signer"),
        chains=_chains(raw.get("chains", [])),
        withdrawal_daily_limits_minor=_limits(raw.get("limits", {}), raw.get("chains", [])),
        paystar=_build(PaystarSettings, raw, "paystar") if "paystar" in raw else None,
        irt=_build(IrtSettings, raw, "irt") if "irt" in raw else None,
        telegram=_build(TelegramSettings, raw, "telegram"),
        nats=_build(NatsSettings, raw, "nats"),
    )
    if settings.paystar is not None and settings.irt is not None:
        _validate_card_keys(settings.irt)
    return settings


def _card_keys_previous(raw: Any) -> tuple[tuple[str, str], ...]:
    """``irt.card_hash_previous`` as (key id, secret) pairs, from a TOML table or a JSON object string."""
    from teller.payments.card_keys import KEYS_PREVIOUS_MAX, key_id_valid  # late: teller.payments imports config

    key = "irt.card_hash_previous"
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ConfigError(f"{key} (TELLER_IRT_CARD_HASH_PREVIOUS) must be a JSON object") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key} must be a table of key id = secret")
    pairs = []
    for key_id, secret in raw.items():
        if not key_id_valid(key_id):
            raise ConfigError(f"{key}: a key id is 1 to 32 of [A-Za-z0-9_-]")
        if not isinstance(secret, str):
            raise ConfigError(f"{key}.{key_id} must be a str, got {_a(type(secret).__name__)}")
        pairs.append((key_id, secret))
    if len(pairs) > KEYS_PREVIOUS_MAX:
        raise ConfigError(f"{key}: at most {KEYS_PREVIOUS_MAX} previous keys")
    return tuple(pairs)


def _validate_card_keys(irt: IrtSettings) -> None:
    """IRT is on: its card-hash key is required and its own (never derived), and every key is usable."""
    from teller.payments.card_keys import key_id_valid, parse_secret  # late: teller.payments imports config

    if not irt.card_hash_secret:
        raise ConfigError("missing required configuration key: irt.card_hash_secret (TELLER_IRT_CARD_HASH_SECRET)"
                          " when [paystar] and [irt] are configured")
    if not key_id_valid(irt.card_hash_key_id):
        raise ConfigError("irt.card_hash_key_id is 1 to 32 of [A-Za-z0-9_-]")
    if irt.card_hash_key_id in dict(irt.card_hash_previous):
        raise ConfigError("irt.card_hash_key_id must not also be a key id in irt.card_hash_previous")
    for name, text in (("card_hash_secret", irt.card_hash_secret),
                       *((f"card_hash_previous.{kid}", secret) for kid, secret in irt.card_hash_previous)):
        try:
            parse_secret(text)
        except ValueError as exc:
            raise ConfigError(f"irt.{name}: {exc}") from None


def _build(cls: type, raw: Mapping[str, Any], section: str, *, required: bool = False) -> Any:
    values = raw.get(section)
    if values is None:
        if required:
            raise ConfigError(f"missing required section: [{section}]")
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"[{section}] must be a table")
    fields = cls.__dataclass_fields__
    for key in values:
        if key not in fields:
            raise ConfigError(f"unknown configuration key: {section}.{key}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in values:
            kwargs[name] = _coerce(f"{section}.{name}", values[name], f.type)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"missing required configuration key: {section}.{name}")
    settings = cls(**kwargs)
    _validate(section, settings)
    return settings



def _coerce(key: str, value: Any, type_name: Any) -> Any:
    """``value`` as ``type_name``. The error names the key and both types, never the value: a value may be a
    secret, or a secret put in the wrong key (a mnemonic as a list, a token under another name)."""
    type_name = str(type_name)
    try:
        if type_name == "bool":
            if isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            if not isinstance(value, bool):
                raise TypeError
            return value
        if type_name == "int":
            if isinstance(value, (bool, float)):  # int(3.7) is 3: a silent change of what was configured
                raise TypeError
            return int(value)
        if type_name == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if type_name == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError, OverflowError):
        # from None: the cause (int()'s ValueError) quotes the value, and a traceback would print it
        raise ConfigError(f"{key} must be {_a(type_name)}, got {_kind_of(value, type_name)}") from None
    return value


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[:1] in "aeiou" else f"a {type_name}"


def _kind_of(value: Any, type_name: str) -> str:
    """What was given, by type only: ``a list``; ``a str that is not one`` for text that is no int or float."""
    kind = _a(type(value).__name__)
    return f"{kind} that is not one" if isinstance(value, str) and type_name != "str" else kind


def _validate(section: str, settings: Any) -> None:
    if section == "auth":
        if len(settings.jwt_secret.encode()) < JWT_SECRET_LEN_MIN:
            raise ConfigError(f"auth.jwt_secret must be at least {JWT_SECRET_LEN_MIN} bytes")
        if not settings.bot_token:
            raise ConfigError("auth.bot_token must not be empty")
        if not settings.ops_token:
            raise ConfigError("auth.ops_token must not be empty")
        # A configured secret no header could carry would never match: its routes shut without a word.
        for key in ("ops_token", "gateway_secret"):
            value = getattr(settings, key)
            if value and not is_header_credential(value):
                raise ConfigError(f"auth.{key} must be 1 to {CREDENTIAL_LEN_MAX} printable ASCII characters")
    if section == "telegram" and settings.mode not in ("off", "polling", "webhook"):
        raise ConfigError("telegram.mode must be one of off, polling, webhook")
    if section == "telegram":
        _validate_webhook_secrets(settings)
    if section == "nats":
        try:
            check_subject_prefix(settings.subject_prefix)
        except ValueError as exc:
            raise ConfigError(f"nats.subject_prefix: {exc}") from None
    if section == "database" and not settings.url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ConfigError("database.url must start with sqlite:// or postgresql://")


def _validate_webhook_secrets(settings: TelegramSettings) -> None:
    if settings.mode == "webhook":
        for key in ("webhook_secret", "webhook_path_secret"):
            if not getattr(settings, key):
                raise ConfigError(f"telegram.{key} is required when telegram.mode = \"webhook\"")
    # One value in both places would put the header secret in every logged URL.
    if settings.webhook_secret and settings.webhook_secret == settings.webhook_path_secret:
        raise ConfigError("telegram.webhook_path_secret must differ from telegram.webhook_secret")


_ASSET_KEYS = {"symbol", "decimals", "contract", "min_withdrawal", "withdrawal_fee"}


def _asset(key: str, raw: Any, *, native: bool) -> AssetSettings:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key} must be a table")
    for k in raw:
        if k not in _ASSET_KEYS or (native and k == "contract"):
            raise ConfigError(f"unknown configuration key: {key}.{k}")
    for k in ("symbol", "decimals") + (() if native else ("contract",)):
        if k not in raw:
            raise ConfigError(f"missing required configuration key: {key}.{k}")
    decimals = _coerce(f"{key}.decimals", raw["decimals"], "int")
    if not 0 <= decimals <= 36:
        raise ConfigError(f"{key}.decimals must be between 0 and 36")
    try:
        minimum = parse_amount(str(raw.get("min_withdrawal", "0")), decimals, allow_zero=True)
        fee = parse_amount(str(raw.get("withdrawal_fee", "0")), decimals, allow_zero=True)
    except InvalidAmount as exc:
        raise ConfigError(f"{key}: {exc.message}") from exc
    return AssetSettings(
        symbol=_coerce(f"{key}.symbol", raw["symbol"], "str"),
        decimals=decimals,
        contract=None if native else _coerce(f"{key}.contract", raw["contract"], "str"),
        min_withdrawal_minor=minimum,
        withdrawal_fee_minor=fee,
    )


_CHAIN_PLAIN = {
    "name": "str", "chain_id": "int", "rpc_url": "str", "confirmations": "int", "poll_interval_s": "float",
    "rpc_timeout_s": "float", "catchup_range_blocks": "int", "max_fee_per_gas_cap_wei": "int",
    "replace_after_s": "float",
}


def _chains(raw: Any) -> tuple[ChainSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError("[[chains]] must be an array of tables")
    chains = []
    for i, item in enumerate(raw):
        key = f"chains[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{key} must be a table")
        for k in item:
            if k not in _CHAIN_PLAIN and k not in ("native", "tokens"):
                raise ConfigError(f"unknown configuration key: {key}.{k}")
        for k in ("name", "chain_id", "rpc_url", "native"):
            if k not in item:
                raise ConfigError(f"missing required configuration key: {key}.{k}")
        kwargs = {k: _coerce(f"{key}.{k}", v, _CHAIN_PLAIN[k]) for k, v in item.items() if k in _CHAIN_PLAIN}
        tokens = tuple(_asset(f"{key}.tokens[{j}]", t, native=False) for j, t in enumerate(item.get("tokens", [])))
        chain = ChainSettings(native=_asset(f"{key}.native", item["native"], native=True), tokens=tokens, **kwargs)
        symbols = [a.symbol for a in chain.assets]
        if len(set(symbols)) != len(symbols):
            raise ConfigError(f"{key}: asset symbols must be unique on a chain")
        if chain.confirmations < 1:
            raise ConfigError(f"{key}.confirmations must be at least 1")
        chains.append(chain)
    names = [c.name for c in chains]
    if len(set(names)) != len(names):
        raise ConfigError("chains: names must be unique")
    return tuple(chains)


def _limits(raw: Any, chains_raw: Any) -> dict[str, int]:
    """Daily withdrawal limits per ledger asset, ``"chain:SYMBOL" = "amount"``, parsed in that asset's own
    decimals (a symbol alone is ambiguous: USDT has 6 decimals on one chain and 18 on another)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("[limits] must be a table")
    for k in raw:
        if k != "withdrawal_daily_per_user":
            raise ConfigError(f"unknown configuration key: limits.{k}")
    decimals: dict[str, int] = {}
    for chain in chains_raw if isinstance(chains_raw, list) else []:
        if not isinstance(chain, Mapping):
            continue
        for asset in [chain.get("native", {}), *chain.get("tokens", [])]:
            if isinstance(asset, Mapping) and "symbol" in asset:
                decimals[f"{chain.get('name')}:{asset['symbol']}"] = int(asset.get("decimals", 0))
    table = raw.get("withdrawal_daily_per_user", {})
    if not isinstance(table, Mapping):
        raise ConfigError("limits.withdrawal_daily_per_user must be a table")
    limits = {}
    for code, text in table.items():
        key = f"limits.withdrawal_daily_per_user.{code}"
        if ":" not in code:
            raise ConfigError(f"{key}: name the ledger asset as \"chain:SYMBOL\" (e.g. \"ethereum:{code}\")")
        if code not in decimals:
            raise ConfigError(f"{key}: no configured chain has this asset")
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise ConfigError(f"{key} must be a decimal string, got {type(text).__name__}")
        try:
            limits[code] = parse_amount(str(text), decimals[code])
        except InvalidAmount as exc:
            raise ConfigError(f"{key}: {exc.message}") from exc
    return limits
