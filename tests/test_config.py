"""Configuration errors name the key and the expected type, never the value: a value may be a secret,
and it may be a secret put in the wrong key. The messages go to stderr and to a JSON log line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from teller.config import (
    AuthSettings,
    ConfigError,
    DatabaseSettings,
    IrtSettings,
    NatsSettings,
    PaystarSettings,
    ServerSettings,
    SignerSettings,
    TelegramSettings,
    load_settings,
    settings_from_mapping,
)

REPO = Path(__file__).resolve().parents[1]
SUBPROCESS_TIMEOUT_S = 120  # the app's imports take ~10 s on a loaded machine
MNEMONIC_WORDS = ["abandon", "ability", "wrist", "SECRETWORD"]
SECRET_INT = 918273645
SECRET_TEXT = "SECRETVALUE"
# one wrong value of each shape; each says what must never be echoed
WRONG_FOR_STR: list[tuple[Any, str, tuple[str, ...]]] = [
    (MNEMONIC_WORDS, "list", tuple(MNEMONIC_WORDS)),
    (SECRET_INT, "int", (str(SECRET_INT),)),
    ({"SECRETKEY": SECRET_TEXT}, "dict", ("SECRETKEY", SECRET_TEXT)),
    (3.25, "float", ("3.25",)),
]
WRONG_FOR_NUMBER: list[tuple[Any, str, tuple[str, ...]]] = [
    (MNEMONIC_WORDS, "list", tuple(MNEMONIC_WORDS)),
    (SECRET_TEXT, "str", (SECRET_TEXT,)),
    ({"SECRETKEY": SECRET_INT}, "dict", ("SECRETKEY", str(SECRET_INT))),
]
WRONG_FOR_BOOL = [(MNEMONIC_WORDS, "list", tuple(MNEMONIC_WORDS)), (SECRET_INT, "int", (str(SECRET_INT),))]


def base() -> dict[str, Any]:
    return {
        "auth": {"bot_token": "123456:TEST-bot-token", "jwt_secret": "j" * 48, "ops_token": "ops-token-for-tests"},
        "chains": [{
            "name": "ethereum", "chain_id": 31337, "rpc_url": "http://127.0.0.1:1", "confirmations": 3,
            "native": {"symbol": "ETH", "decimals": 18},
            "tokens": [{"symbol": "USDT", "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "decimals": 6}],
        }],
        "paystar": {"base_url": "http://127.0.0.1:2", "application_id": "app", "access_password": "pw",
                    "refresh_token": "rt"},
        "irt": {"company_iban": "IR820540102680020817909002", "account_owner": "Teller Co", "bank": "Parsian",
                "card_hash_secret": "h" * 32},
    }


def _wrong_values(type_name: str) -> list[tuple[Any, str, tuple[str, ...]]]:
    return {"str": WRONG_FOR_STR, "int": WRONG_FOR_NUMBER, "float": WRONG_FOR_NUMBER, "bool": WRONG_FOR_BOOL}[type_name]


def _section_cases() -> list[Any]:
    sections = {"auth": AuthSettings, "server": ServerSettings, "database": DatabaseSettings,
                "signer": SignerSettings, "paystar": PaystarSettings, "irt": IrtSettings,
                "telegram": TelegramSettings, "nats": NatsSettings}
    cases = []
    for section, cls in sections.items():
        for f in dataclasses.fields(cls):
            if str(f.type).startswith("tuple"):  # a table (irt.card_hash_previous): its own tests below
                continue
            for value, actual, never in _wrong_values(str(f.type)):
                cases.append(pytest.param(section, f.name, str(f.type), value, actual, never,
                                          id=f"{section}.{f.name}={actual}"))
    return cases


def _chain_cases() -> list[Any]:
    plain = {"name": "str", "chain_id": "int", "rpc_url": "str", "confirmations": "int", "poll_interval_s": "float",
             "rpc_timeout_s": "float", "catchup_range_blocks": "int", "max_fee_per_gas_cap_wei": "int",
             "replace_after_s": "float"}
    cases = []
    for name, type_name in plain.items():
        for value, actual, never in _wrong_values(type_name):
            cases.append(pytest.param(("chains", 0, name), f"chains[0].{name}", type_name, value, actual, never,
                                      id=f"chains.{name}={actual}"))
    for where, key in ((("native",), "chains[0].native"), (("tokens", 0), "chains[0].tokens[0]")):
        for field, type_name in (("symbol", "str"), ("decimals", "int")) + (
                (("contract", "str"),) if where != ("native",) else ()):
            for value, actual, never in _wrong_values(type_name):
                cases.append(pytest.param(("chains", 0, *where, field), f"{key}.{field}", type_name, value, actual,
                                          never, id=f"{key}.{field}={actual}"))
    return cases


def _assert_names_key_and_types_only(message: str, key: str, expected: str, actual: str,
                                     never: tuple[str, ...]) -> None:
    assert key in message and expected in message and actual in message, message
    assert not any(part in message for part in never), message


@pytest.mark.parametrize("section, name, expected, value, actual, never", _section_cases())
def test_a_wrong_type_in_any_key_names_the_key_and_types_never_the_value(
    section: str, name: str, expected: str, value: Any, actual: str, never: tuple[str, ...],
) -> None:
    raw = base()
    raw.setdefault(section, {})[name] = value
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(raw, environ={})
    _assert_names_key_and_types_only(str(info.value), f"{section}.{name}", expected, actual, never)


@pytest.mark.parametrize("where, key, expected, value, actual, never", _chain_cases())
def test_a_wrong_type_in_a_chain_or_asset_key_names_the_key_never_the_value(
    where: tuple[Any, ...], key: str, expected: str, value: Any, actual: str, never: tuple[str, ...],
) -> None:
    raw = base()
    table: Any = raw
    for step in where[:-1]:
        table = table[step]
    table[where[-1]] = value
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(raw, environ={})
    _assert_names_key_and_types_only(str(info.value), key, expected, actual, never)


@pytest.mark.parametrize("value", [MNEMONIC_WORDS, SECRET_TEXT, {"SECRETKEY": SECRET_TEXT}, SECRET_INT])
def test_amounts_and_limits_of_the_wrong_shape_never_echo_the_value(value: Any) -> None:
    for set_value in (
        lambda raw: raw["chains"][0]["native"].__setitem__("min_withdrawal", value),
        lambda raw: raw["chains"][0]["tokens"][0].__setitem__("withdrawal_fee", value),
        lambda raw: raw.__setitem__("limits", {"withdrawal_daily_per_user": {"ethereum:USDT": value}}),
        # a table's keys are names, and are named: a dict here goes in as a list of one
        lambda raw: raw.__setitem__("limits", {
            "withdrawal_daily_per_user": [value] if isinstance(value, dict) else value}),
    ):
        raw = base()
        set_value(raw)
        try:
            settings_from_mapping(raw, environ={})
        except ConfigError as exc:
            message = str(exc)
        else:
            continue  # an int is a fine amount
        never = (*MNEMONIC_WORDS, SECRET_TEXT, "SECRETKEY", str(SECRET_INT))
        assert not any(part in message for part in never), message


def test_an_environment_override_of_the_wrong_type_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(base(), environ={"TELLER_PORT": SECRET_TEXT})
    assert str(info.value) == "server.port must be an int, got a str that is not one"


def test_invalid_toml_is_reported_by_position_only(tmp_path: Path) -> None:
    path = tmp_path / "teller.toml"
    path.write_text('[signer]\nmnemonic = "abandon ability\x01SECRETWORD"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert "not valid TOML" in message and "line 2" in message
    assert "\x01" not in message and "\\x01" not in message and "SECRETWORD" not in message


def _toml(raw: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    return "".join(f"[{section}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())
                   for section, table in raw.items())


@pytest.mark.parametrize("section, name, value, never", [
    ("signer", "mnemonic", MNEMONIC_WORDS, tuple(MNEMONIC_WORDS)),
    ("auth", "jwt_secret", {"SECRETKEY": SECRET_TEXT}, ("SECRETKEY", SECRET_TEXT)),
])
def test_the_cli_prints_and_logs_the_key_but_no_part_of_the_value(
    tmp_path: Path, section: str, name: str, value: Any, never: tuple[str, ...],
) -> None:
    raw = {"auth": base()["auth"], section: {**base().get(section, {}), name: value}}
    path = tmp_path / "teller.toml"
    path.write_text(_toml(raw), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_")}
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "--config", str(path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
    assert result.returncode == 2, result.stderr
    assert f"{section}.{name} must be a str" in result.stderr
    assert '"config.invalid"' in result.stdout and f"{section}.{name}" in result.stdout
    assert not any(part in result.stdout + result.stderr for part in never), result.stdout + result.stderr


def test_a_float_for_an_int_key_is_refused_not_truncated() -> None:
    from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN

    raw = {"auth": {"bot_token": BOT_TOKEN, "jwt_secret": "j" * 48, "ops_token": OPS_TOKEN},
           "server": {"port": 8080.7}}
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(raw, environ={})
    assert "server.port must be an int, got a float" in str(caught.value)


WEBHOOK_HEADER_SECRET = "SECRETheader-0123456789abcdef"
WEBHOOK_PATH_SECRET = "SECRETpath-0123456789abcdef"


@pytest.mark.parametrize("mode", ["webhook", "polling"])
def test_one_value_as_both_webhook_secrets_is_refused_naming_the_key(mode: str) -> None:
    raw = {**base(), "telegram": {"mode": mode, "webhook_secret": WEBHOOK_HEADER_SECRET,
                                  "webhook_path_secret": WEBHOOK_HEADER_SECRET}}
    with pytest.raises(ConfigError, match="telegram.webhook_path_secret must differ from telegram.webhook_secret") \
            as refused:
        settings_from_mapping(raw, environ={})
    assert WEBHOOK_HEADER_SECRET not in str(refused.value)


def test_equal_webhook_secrets_from_the_environment_are_refused() -> None:
    environ = {"TELLER_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_HEADER_SECRET,
               "TELLER_TELEGRAM_WEBHOOK_PATH_SECRET": WEBHOOK_HEADER_SECRET}
    with pytest.raises(ConfigError, match="telegram.webhook_path_secret must differ") as refused:
        settings_from_mapping({**base(), "telegram": {"mode": "webhook"}}, environ=environ)
    assert WEBHOOK_HEADER_SECRET not in str(refused.value)


@pytest.mark.parametrize("missing", ["webhook_secret", "webhook_path_secret"])
def test_webhook_mode_needs_both_secrets(missing: str) -> None:
    telegram = {"mode": "webhook", "webhook_secret": WEBHOOK_HEADER_SECRET, "webhook_path_secret": WEBHOOK_PATH_SECRET}
    del telegram[missing]
    with pytest.raises(ConfigError, match=f"telegram.{missing} is required"):
        settings_from_mapping({**base(), "telegram": telegram}, environ={})


def test_webhook_secrets_come_from_the_environment_and_stay_out_of_repr() -> None:
    environ = {"TELLER_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_HEADER_SECRET,
               "TELLER_TELEGRAM_WEBHOOK_PATH_SECRET": WEBHOOK_PATH_SECRET}
    settings = settings_from_mapping({**base(), "telegram": {"mode": "webhook"}}, environ=environ)
    assert (settings.telegram.webhook_secret, settings.telegram.webhook_path_secret) == (
        WEBHOOK_HEADER_SECRET, WEBHOOK_PATH_SECRET)
    assert "SECRET" not in repr(settings.telegram) and "SECRET" not in repr(settings)


@pytest.mark.parametrize("key", ["ops_token", "gateway_secret"])
@pytest.mark.parametrize("value", ["tøken-with-a-non-ascii-letter", "token with\ta tab", "token\x00nul", "x" * 4097])
def test_a_credential_that_no_header_could_carry_is_refused_naming_the_key_never_the_value(key: str, value: str) -> None:
    """A header credential is 1 to 4096 printable ASCII characters, compared as bytes: a configured one
    outside that would never match any request, and its routes would be shut without a word."""
    raw = base()
    raw["auth"][key] = value
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(raw, environ={})
    assert f"auth.{key}" in str(info.value)
    assert value not in str(info.value)


# -- the card-hash keys (issue 15) -----------------------------------------------------------------

def _irt(**irt: Any) -> dict[str, Any]:
    raw = base()
    raw["irt"] = {k: v for k, v in {**raw["irt"], **irt}.items() if v is not None}
    return raw


def test_irt_on_requires_its_own_card_hash_secret_naming_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(_irt(card_hash_secret=None), environ={})
    assert "irt.card_hash_secret" in str(info.value) and "TELLER_IRT_CARD_HASH_SECRET" in str(info.value)
    raw = _irt(card_hash_secret=None)
    del raw["paystar"]  # IRT off: nothing to hash, nothing required
    assert settings_from_mapping(raw, environ={}).irt is not None


def test_the_card_hash_secret_and_previous_keys_come_from_the_environment() -> None:
    settings = settings_from_mapping(_irt(card_hash_secret=None), environ={
        "TELLER_IRT_CARD_HASH_SECRET": "s" * 32, "TELLER_IRT_CARD_HASH_PREVIOUS": '{"legacy": "hex:' + "ab" * 32 + '"}'})
    assert settings.irt is not None and settings.irt.card_hash_secret == "s" * 32
    assert settings.irt.card_hash_previous == (("legacy", "hex:" + "ab" * 32),)
    assert "s" * 32 not in repr(settings) and "ab" * 32 not in repr(settings)


@pytest.mark.parametrize(("irt", "names"), [
    ({"card_hash_secret": "short"}, "irt.card_hash_secret"),
    ({"card_hash_secret": "hex:zz" + "0" * 40}, "irt.card_hash_secret"),
    ({"card_hash_key_id": "bad id!"}, "irt.card_hash_key_id"),
    ({"card_hash_key_id": "old", "card_hash_previous": {"old": "o" * 32}}, "irt.card_hash_key_id"),
    ({"card_hash_previous": {"bad id": "o" * 32}}, "irt.card_hash_previous"),
    ({"card_hash_previous": {"old": SECRET_INT}}, "irt.card_hash_previous.old"),
    ({"card_hash_previous": {"old": "short-" + SECRET_TEXT[:3]}}, "irt.card_hash_previous.old"),
    ({"card_hash_previous": MNEMONIC_WORDS}, "irt.card_hash_previous"),
    ({"card_hash_previous": "{not json " + SECRET_TEXT}, "irt.card_hash_previous"),
    ({"card_hash_previous": {f"k{i}": "o" * 32 for i in range(9)}}, "irt.card_hash_previous"),
])
def test_bad_card_hash_keys_are_refused_naming_the_key_never_the_value(irt: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(_irt(**irt), environ={})
    message = str(info.value)
    assert names in message, message
    for part in (SECRET_TEXT, SECRET_TEXT[:3], str(SECRET_INT), *MNEMONIC_WORDS, "o" * 32):
        assert part not in message, message


def test_rotation_keys_parse() -> None:
    from teller.flows.irt import card_keys
    from teller.payments.card_keys import legacy_card_hash_secret

    legacy = legacy_card_hash_secret("j" * 48)
    settings = settings_from_mapping(_irt(card_hash_secret="n" * 32, card_hash_key_id="k2",
                                          card_hash_previous={"k1": "o" * 32, "legacy": legacy}), environ={})
    keys = card_keys(settings)
    assert keys.current_id == "k2" and keys.ids == {"k2", "k1", "legacy"}
    assert "n" * 32 not in repr(keys) and legacy not in repr(keys)
