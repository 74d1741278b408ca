"""A real anvil process (``node_modules/.bin/anvil``) on a free loopback port, for dev mode and tests.

``AnvilProcess`` owns the process only; what to do with the running node (mine, snapshot, faucet, demo
token) is in ``teller.chain.devchain``. anvil keeps its state cache (~360 KB a block, FIELD-NOTES) in a
temporary directory removed on stop, never under ``~/.foundry``. The mnemonic travels on anvil's command
line, visible to ``ps``: pass only public dev/test mnemonics here, never a real one.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from typing import Any

from teller.chain.devchain import DevChain

__all__ = ["AnvilProcess", "AnvilStartError", "ANVIL_DEFAULT_MNEMONIC", "anvil_binary"]

ANVIL_DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
START_ATTEMPTS_MAX = 3  # a free port can be taken between our probe and anvil's bind
READY_POLL_INTERVAL_S = 0.05
STOP_TIMEOUT_S = 5.0
LOG_TAIL_BYTES = 2000
_PR_SET_PDEATHSIG = 1


class AnvilStartError(RuntimeError):
    """anvil did not start or did not answer in time; the message carries its log's tail."""


def anvil_binary() -> Path:
    """The native anvil that ``node_modules/.bin/anvil`` would run. That entry is a node wrapper that
    spawns the native binary as its child: killing the wrapper (SIGKILL, a dying parent) would orphan
    anvil, so the native binary of the platform package is preferred when it is there."""
    scope = REPO_ROOT / "node_modules" / "@foundry-rs"
    for native in sorted(scope.glob("anvil-*/bin/anvil")):
        if os.access(native, os.X_OK):
            return native
    return REPO_ROOT / "node_modules" / ".bin" / "anvil"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux only)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class AnvilProcess:
    """Start with ``start()`` (or ``with AnvilProcess(...) as anvil:``); ``url`` and ``dev`` are then
    usable; ``stop()`` is idempotent and also runs at interpreter exit. Synchronous on purpose: it is
    used at start-up and from session-scoped test fixtures, outside any event loop."""

    def __init__(
        self,
        *,
        chain_id: int = 31337,
        mnemonic: str = ANVIL_DEFAULT_MNEMONIC,
        port: int | None = None,
        block_time_s: float | None = None,
        automine: bool = True,
        accounts: int = 10,
        balance_eth: int = 10_000,
        die_with_parent: bool = True,
    ) -> None:
        self.chain_id = chain_id
        self._mnemonic = mnemonic
        self._port_wanted = port
        self.block_time_s = block_time_s
        self.automine = automine
        self.accounts = accounts
        self.balance_eth = balance_eth
        self._die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: str | None = None
        self._finalizer: weakref.finalize | None = None
        self.port = 0
        self._dev: DevChain | None = None

    def __repr__(self) -> str:
        return f"AnvilProcess(chain_id={self.chain_id}, port={self.port}, running={self.running})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def dev(self) -> DevChain:
        if self._dev is None or self._dev.url != self.url:
            self._dev = DevChain(self.url)
        return self._dev

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> AnvilProcess:
        assert self._proc is None, "already started"
        last_error = ""
        for _ in range(START_ATTEMPTS_MAX):
            self.port = self._port_wanted or _free_port()
            self._tmpdir = tempfile.mkdtemp(prefix="teller-anvil-")
            self._proc = self._spawn()
            self._finalizer = weakref.finalize(self, _stop, self._proc, self._tmpdir)
            error = self._wait_ready()
            if error is None:
                return self
            last_error = error
            self.stop()
            if self._port_wanted:
                break
        raise AnvilStartError(f"anvil did not start: {last_error}")

    def stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # terminates, waits, removes the cache directory; runs at most once
        self._proc = None
        self._finalizer = None

    def kill(self) -> None:
        """SIGKILL, as a crashing node would die (the cache directory is still removed by ``stop``)."""
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc, signal.SIGKILL)
            self._proc.wait()

    def _spawn(self) -> subprocess.Popen[bytes]:
        assert self._tmpdir is not None
        binary = anvil_binary()
        if not binary.exists():
            raise AnvilStartError(f"{binary} is missing: run `npm install` in {REPO_ROOT}")
        args = [
            str(binary), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id),
            "--mnemonic", self._mnemonic, "--accounts", str(self.accounts), "--balance", str(self.balance_eth),
            "--cache-path", os.path.join(self._tmpdir, "cache"),
        ]
        if self.block_time_s is not None:
            args += ["--block-time", str(self.block_time_s)]
        if not self.automine and self.block_time_s is None:
            args.append("--no-mining")
        # PDEATHSIG fires when the *thread* that forked exits: only safe from the main thread.
        die_with_parent = self._die_with_parent and threading.current_thread() is threading.main_thread()
        log = open(os.path.join(self._tmpdir, "anvil.log"), "wb")  # a file, not a pipe: a full pipe blocks anvil
        try:
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if die_with_parent else None,
                start_new_session=True,  # its own process group: stop() reaches a wrapper's child too
                env={**os.environ, "HOME": self._tmpdir},  # nothing of anvil's lands in the real ~/.foundry
            )
        finally:
            log.close()

    def _wait_ready(self) -> str | None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return f"exited with {self._proc.returncode}: {self._log_tail()}"
            if _answers_chain_id(self.url) == self.chain_id:
                return None
            time.sleep(READY_POLL_INTERVAL_S)
        return f"no answer within {START_TIMEOUT_S} s: {self._log_tail()}"

    def _log_tail(self) -> str:
        assert self._tmpdir is not None
        try:
            with open(os.path.join(self._tmpdir, "anvil.log"), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - LOG_TAIL_BYTES))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"


def _answers_chain_id(url: str) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1.0) as resp:
            answer: Any = json.loads(resp.read())
        return int(answer["result"], 16)
    except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError):
        return None


def _stop(proc: subprocess.Popen[bytes], tmpdir: str) -> None:
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    shutil.rmtree(tmpdir, ignore_errors=True)


def _signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the group we created with start_new_session; its id is our child's pid
    except ProcessLookupError:
        pass
