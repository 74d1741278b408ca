"""The log's last line of defence: whatever a caller passes, secrets and full card numbers never reach the output."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

from hypothesis import given, strategies as st

from teller.log import get_logger, redact

card_numbers = st.text(alphabet="0123456789", min_size=16, max_size=19)
prose = st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=20)


@given(before=prose, card=card_numbers, after=prose)
def test_a_full_card_number_inside_any_text_is_masked(before: str, card: str, after: str) -> None:
    event = redact(None, "info", {"event": "x", "note": f"{before}{card}{after}"})
    assert card not in event["note"]
    assert event["note"] == f"{before}{card[:6]}******{card[-4:]}{after}"


@given(digits=st.text(alphabet="0123456789", max_size=11))
def test_short_numbers_are_left_alone(digits: str) -> None:
    assert redact(None, "info", {"event": "x", "amount": digits})["amount"] == digits


def test_secret_named_keys_are_masked_whatever_their_value() -> None:
    event = redact(None, "info", {
        "event": "x", "bot_token": "123:abc", "private_key": "0x" + "1" * 64, "mnemonic": "abandon abandon",
        "init_data": "query_id=1&hash=ff", "Authorization": "Bearer x", "jwt_secret": 42, "card_number": "6037997512345678",
        "password": None,
    })
    assert {key for key, value in event.items() if value == "<redacted>"} == {
        "bot_token", "private_key", "mnemonic", "init_data", "Authorization", "jwt_secret", "card_number", "password"}


def test_id_keys_that_only_end_in_key_stay_readable() -> None:
    event = redact(None, "info", {"event": "x", "idempotency_key": "w-1", "key": "k", "event_key": "e", "transfer_key": "t"})
    assert event == {"event": "x", "idempotency_key": "w-1", "key": "k", "event_key": "e", "transfer_key": "t"}


def test_a_logged_line_is_json_with_the_actor_path_and_nothing_secret(log_stream: io.StringIO) -> None:
    stream = log_stream
    get_logger(actor="/teller/wallets/7").info("card added", card="6037997512345678", api_token="s3cret", user_id=7)
    line = json.loads(stream.getvalue())
    assert line["actor"] == "/teller/wallets/7" and line["user_id"] == 7 and line["event"] == "card added"
    assert line["card"] == "603799******5678" and line["api_token"] == "<redacted>"
    assert "s3cret" not in stream.getvalue() and "6037997512345678" not in stream.getvalue()


# -- URLs: only scheme://host[:port] is ever logged ----------------------------------------------------------
schemes = st.sampled_from(["http", "https", "wss", "postgresql", "nats", "redis", "git+ssh"])
hosts = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?(\.[a-z0-9]{1,8}){0,3}", fullmatch=True),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda ip: ".".join(map(str, ip))),
    st.just("[::1]"),
)
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
# RFC 3986 characters, "SECRET" somewhere in each part so the test can tell what must go
_URL_CHARS = "abcXYZ019-._~!$&'()*+,;=:%"
parts = st.text(alphabet=_URL_CHARS.replace("'", ""), max_size=12).map(lambda s: f"SECRET{s}")
paths = st.lists(parts, min_size=1, max_size=4).map(lambda segments: "/" + "/".join(segments))
queries = st.lists(st.tuples(parts, parts), min_size=1, max_size=3).map(
    lambda pairs: "?" + "&".join(f"{k.replace('=', '')}={v}" for k, v in pairs))
fragments = parts.map(lambda f: f"#{f}")
users = parts.map(lambda u: u.replace(":", "").replace("@", ""))
passwords = st.text(alphabet=_URL_CHARS.replace("'", "") + "@", max_size=12).map(lambda s: f"SECRET{s}")
userinfos = st.one_of(users.map(lambda u: f"{u}@"), st.tuples(users, passwords).map(lambda up: f"{up[0]}:{up[1]}@"))
# around a URL: prose that ends where a URL ends (space, quote, newline)
around = st.text(alphabet=st.characters(blacklist_characters="SECRET:/@", blacklist_categories=("Nd", "Cs")),
                 max_size=12)
ends = st.sampled_from([" ", "' ", '", ', "')", "\n", "\t", " (retrying) "])


@given(scheme=schemes, host=hosts, port=ports, userinfo=st.one_of(st.just(""), userinfos),
       path=st.one_of(st.just(""), paths), query=st.one_of(st.just(""), queries),
       fragment=st.one_of(st.just(""), fragments), before=around, after=around, end=ends)
def test_a_url_inside_any_string_value_is_cut_to_scheme_host_and_port(
    scheme: str, host: str, port: str, userinfo: str, path: str, query: str, fragment: str,
    before: str, after: str, end: str,
) -> None:
    url = f"{scheme}://{userinfo}{host}{port}{path}{query}{fragment}"
    tail = url[len(url.rstrip(").,;:!?")):]  # what ends a URL in prose ("see http://host/x.") stays prose
    event = redact(None, "info", {"event": f"{before} {url}{end}{after}", "error": f"{url}", "url": url})
    assert event["event"] == f"{before} {scheme}://{host}{port}{tail}{end}{after}"
    assert event["error"] == event["url"] == f"{scheme}://{host}{port}{tail}"
    assert "SECRET" not in repr(event)


# anything a careless config may hold in a password: "/", "?", "#", "@", ":" and quotes included. Not a quote
# followed by a delimiter: in text that is where a quoted URL ends (url='http://host/path', ...). Its letters
# are upper case and hosts' lower case, so any piece of it left over shows.
wild_passwords = st.text(alphabet="ABCXYZ-._~!$&'()*+,;=:%@/?#\"", min_size=1, max_size=16).filter(
    lambda s: re.search("[A-Z]", s) and not re.search(r"['\"][,;:)'\"]", s))


@given(scheme=schemes, host=hosts, port=ports, user=st.sampled_from(["teller", "u"]), password=wild_passwords,
       rest=st.one_of(st.just(""), paths, queries))
def test_a_password_never_survives_whatever_characters_it_holds(
    scheme: str, host: str, port: str, user: str, password: str, rest: str,
) -> None:
    url = f"{scheme}://{user}:{password}@{host}{port}{rest}"
    event = redact(None, "info", {"event": "x", "dsn": f"connect to {url} failed"})
    assert event["dsn"].startswith(f"connect to {scheme}://") and event["dsn"].endswith(" failed")
    assert not re.search("[A-Z]", event["dsn"]), event["dsn"]


def test_urls_are_cut_in_tracebacks_nested_values_and_objects(log_stream: io.StringIO) -> None:
    class Refused(Exception):
        pass

    url = "https://mainnet.example/v3/SECRETKEY123?apikey=SECRET2"
    try:
        try:
            raise OSError(f"cannot reach {url}")
        except OSError as exc:
            raise Refused(f"url='{url}'") from exc
    except Refused as exc:
        get_logger().error("crashed", error=exc, urls=[url, {"inner": (url,)}], exc_info=exc)
    line = json.loads(log_stream.getvalue())
    assert "SECRET" not in log_stream.getvalue()
    assert "https://mainnet.example" in line["exception"] and "Refused" in line["exception"]
    assert line["urls"] == ["https://mainnet.example", {"inner": ["https://mainnet.example"]}]
    assert line["error"] == "Refused(\"url='https://mainnet.example'\")"


def test_userinfo_of_a_database_url_is_masked(log_stream: io.StringIO) -> None:
    get_logger().warning("db.down", reason="could not connect: postgresql://teller:hunter2@db.internal:5432/teller")
    line = json.loads(log_stream.getvalue())
    assert line["reason"] == "could not connect: postgresql://db.internal:5432"


def test_stdlib_log_lines_are_cut_too(log_stream: io.StringIO) -> None:
    import logging

    logging.getLogger("aiogram.dispatcher").error(
        "Failed to fetch updates - %s", "https://api.telegram.org/bot123456:SECRETtoken/getUpdates")
    assert "SECRET" not in log_stream.getvalue() and "https://api.telegram.org" in log_stream.getvalue()


def test_text_without_a_url_is_left_alone() -> None:
    event = {"event": "x", "note": "ratio 3:1 at host:8545/path, see a/b?c", "n": 7, "ok": True, "none": None}
    assert redact(None, "info", dict(event)) == event


# An embedding that imports Teller and logs before configure_logging(): the secret sits in a local variable of
# the failing frame, where a locals-rendering traceback (structlog's unconfigured default, with rich)
# prints it.
_LOG_BEFORE_CONFIGURE = """
import teller.app, teller.cli, teller.devmode, teller.http.middleware

def sign_with_the_key():
    jwt_secret = "{secret}"
    raise RuntimeError("signing failed")

def log_a_failure(log):
    try:
        sign_with_the_key()
    except RuntimeError:
        log.exception("embedding.failed")

for log in (teller.app._log, teller.http.middleware._log, teller.log.get_logger(component="embedding")):
    log_a_failure(log)
teller.log.configure_logging()  # and the same after Teller's own configuration
log_a_failure(teller.app._log)
"""


def test_a_logger_used_before_configure_logging_prints_no_local_variables() -> None:
    secret = "SECRET-" + "s3cr3t" * 4
    result = subprocess.run([sys.executable, "-c", _LOG_BEFORE_CONFIGURE.format(secret=secret)],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("embedding.failed") == 4, output  # every line was written ...
    assert output.count("signing failed") == 4, output    # ... with its traceback
    assert secret not in output
    assert "jwt_secret" not in output and "locals" not in output
