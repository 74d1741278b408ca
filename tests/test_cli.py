"""A start that fails prints one line naming the cause and the setting to change, exits non-zero, shows no
traceback and leaves no child process (anvil, the Paystar sandbox) behind. Each case runs main.py for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from teller.devmode import DEV_SIGNER_MNEMONIC
from tests.fixtures.common import free_port
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 120
READY_TIMEOUT_S = 60.0
DB_PASSWORD = "pg-pass-" + "s3cr3t" * 3
RPC_SECRET = "rpc-key-" + "s3cr3t" * 3


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other program already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _config(tmp_path: Path, *, port: int, database_url: str | None = None, extra: str = "") -> Path:
    path = tmp_path / "teller.toml"
    path.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[database]\nurl = "{database_url or "sqlite:///" + str(tmp_path / "teller.db")}"\n'
        f'[auth]\nbot_token = "{BOT_TOKEN}"\njwt_secret = "{"j" * 48}"\nops_token = "{OPS_TOKEN}"\n' + extra,
        encoding="utf-8")
    return path


def _environ(marker: str, **extra: str) -> dict[str, str]:
    """No TELLER_* from the caller's shell; the marker is inherited by every process Teller starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELLER_")}
    return {**env, "START_FAILURE_TEST_MARKER": marker, **extra}


def _marked_processes(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (a zombie's environment reads empty)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path("/proc", entry, "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ:
            found.append(int(entry))
    return found


def _run(tmp_path: Path, args: list[str], **env: str) -> tuple[subprocess.CompletedProcess[str], list[int]]:
    marker = uuid.uuid4().hex
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=tmp_path,
                            env=_environ(marker, **env), capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S)
    return result, _marked_processes(marker)


def _assert_one_line(result: subprocess.CompletedProcess[str], *, names: str, exit_code: int = 1) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == exit_code, output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("teller: ") and names in lines[0], lines[0]
    return lines[0]


def test_a_taken_port_is_one_line_naming_server_port(tmp_path: Path, taken_port: int) -> None:
    result, left = _run(tmp_path, ["--config", str(_config(tmp_path, port=taken_port))])
    line = _assert_one_line(result, names="set server.port or TELLER_PORT")
    assert f"cannot listen on 127.0.0.1:{taken_port}: address already in use" in line
    assert left == []


def test_a_port_past_65535_is_one_line(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, ["--config", str(_config(tmp_path, port=70000))])
    line = _assert_one_line(result, names="server.port (TELLER_PORT)")
    assert "cannot listen on 127.0.0.1:70000" in line


def test_an_unreachable_database_is_one_line_naming_database_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://teller:{DB_PASSWORD}@127.0.0.1:{free_port()}/teller"
    result, _ = _run(tmp_path, ["--config", str(_config(tmp_path, port=free_port(), database_url=url))])
    line = _assert_one_line(result, names="set database.url or TELLER_DATABASE_URL")
    assert "postgresql://127.0.0.1:" in line
    assert DB_PASSWORD not in result.stdout + result.stderr


def test_a_config_path_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, ["--config", str(tmp_path)])
    _assert_one_line(result, names="is a directory", exit_code=2)


def test_dev_mode_on_a_taken_port_is_one_line_and_stops_anvil_and_the_sandbox(tmp_path: Path,
                                                                              taken_port: int) -> None:
    result, left = _run(tmp_path, ["--dev", "--var-dir", str(tmp_path / "var")],
                        TELLER_PORT=str(taken_port), TELLER_DEV_SANDBOX_PORT=str(free_port()))
    _assert_one_line(result, names="set server.port or TELLER_PORT")
    assert left == []


def test_dev_mode_on_a_taken_sandbox_port_is_one_line_and_stops_anvil(tmp_path: Path,
                                                                     taken_port: int) -> None:
    result, left = _run(tmp_path, ["--dev", "--var-dir", str(tmp_path / "var")],
                        TELLER_PORT=str(free_port()), TELLER_DEV_SANDBOX_PORT=str(taken_port))
    line = _assert_one_line(result, names="set TELLER_DEV_SANDBOX_PORT")
    assert f"127.0.0.1:{taken_port} (the Paystar sandbox)" in line
    assert left == []


@pytest.mark.parametrize("variable", ["TELLER_PORT", "TELLER_DEV_SANDBOX_PORT"])
def test_dev_mode_with_a_bad_port_variable_is_one_line_before_anything_starts(tmp_path: Path,
                                                                             variable: str) -> None:
    ports = {"TELLER_PORT": str(free_port()), "TELLER_DEV_SANDBOX_PORT": str(free_port()), variable: "80a80"}
    result, left = _run(tmp_path, ["--dev", "--var-dir", str(tmp_path / "var")], **ports)
    line = _assert_one_line(result, names=f"{variable} must be a port number", exit_code=2)
    assert "80a80" not in line
    assert left == []


def test_a_chain_whose_rpc_is_down_at_start_does_not_stop_the_start(tmp_path: Path) -> None:
    """The watcher retries with backoff: Teller serves, and says only the node's scheme://host:port."""
    port = free_port()
    chain = (f'[signer]\nmnemonic = "{DEV_SIGNER_MNEMONIC}"\n'
             '[[chains]]\nname = "ethereum"\nchain_id = 31337\nconfirmations = 3\n'
             f'rpc_url = "http://user:{RPC_SECRET}@127.0.0.1:{free_port()}/v3/{RPC_SECRET}"\n'
             'native = {symbol = "ETH", decimals = 18, min_withdrawal = "0.001", '
             'withdrawal_fee = "0.0005"}\n')
    marker = uuid.uuid4().hex
    process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config",
                                str(_config(tmp_path, port=port, extra=chain))],
                               cwd=tmp_path, env=_environ(marker), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _answers(f"http://127.0.0.1:{port}/healthz"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "Teller did not start"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
    assert process.returncode == 0, stdout + stderr
    assert "Traceback" not in stdout + stderr and RPC_SECRET not in stdout + stderr


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
