"""HTTP benchmark: `GET /api/v1/balances` with JWT auth vs a bare aiohttp JSON handler, same run.

Both servers are started the same way (a child process on a free loopback port) and loaded by wrk
at 64 connections. Prints requests/s of each, their ratio and Teller's p99 latency, with targets.
Run: python bench/http_api.py   (needs wrk: apt-get install wrk). Not named http.py: as a script its folder
is sys.path[0], and that name would shadow the standard library's http package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 64
DURATION_S = 8
ROUNDS = 3
RATIO_TARGET = 0.6
P99_TARGET_MS = 50.0
START_TIMEOUT_S = 30.0

BARE_SERVER = """
import sys
from aiohttp import web
async def handler(request):
    return web.json_response({"balances": [
        {"asset": "IRT", "chain": None, "available": "150000", "held": "0", "decimals": 1}]})
app = web.Application()
app.router.add_get("/api/v1/balances", handler)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""

TELLER_CONFIG = """
[server]
host = "127.0.0.1"
port = {port}
rate_limit_per_user_per_s = 1000000.0
rate_limit_per_ip_per_s = 1000000.0
rate_limit_burst = 1000000

[database]
url = "sqlite:///{db}"

[auth]
bot_token = "123:bench"
jwt_secret = "{secret}"
ops_token = "bench-ops"
gateway_secret = "bench-gateway"

[irt]
company_iban = "IR820540102680020817909002"
account_owner = "Bench"
bank = "Parsian"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:  # not up yet
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def wrk(url: str, headers: dict[str, str]) -> tuple[float, float]:
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency", url]
    for name, value in headers.items():
        args[1:1] = ["-H", f"{name}: {value}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"wrk saw error responses:\n{out}")
    return rps, float(p99.group(1)) * scale


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="teller-bench-http-"))
    bare_port, teller_port = free_port(), free_port()
    config = tmp / "teller.toml"
    config.write_text(TELLER_CONFIG.format(port=teller_port, db=tmp / "teller.db", secret="b" * 48))
    env = {**os.environ, "TELLER_LOG_LEVEL": "WARNING"}
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)], env=env)
    teller = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config)], env=env, cwd=ROOT)
    try:
        wait_up(f"http://127.0.0.1:{bare_port}/api/v1/balances")
        wait_up(f"http://127.0.0.1:{teller_port}/healthz")
        request = urllib.request.Request(
            f"http://127.0.0.1:{teller_port}/api/v1/auth/telegram", method="POST",
            headers={"X-Telegram-Id": "1001", "X-Gateway-Secret": "bench-gateway"})
        token = json.load(urllib.request.urlopen(request))["token"]
        auth = {"Authorization": f"Bearer {token}"}
        bare_rps, bare_p99, teller_rps, teller_p99 = [], [], [], []
        for _ in range(ROUNDS):  # interleaved, so drift on a noisy machine hits both alike
            rps, p99 = wrk(f"http://127.0.0.1:{bare_port}/api/v1/balances", {})
            bare_rps.append(rps)
            bare_p99.append(p99)
            rps, p99 = wrk(f"http://127.0.0.1:{teller_port}/api/v1/balances", auth)
            teller_rps.append(rps)
            teller_p99.append(p99)
    finally:
        for proc in (bare, teller):
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = statistics.median(teller_rps) / statistics.median(bare_rps)
    p99 = statistics.median(teller_p99)
    print(f"bare aiohttp JSON handler: {statistics.median(bare_rps):,.0f} req/s, p99 "
          f"{statistics.median(bare_p99):.1f} ms (medians of {ROUNDS})")
    print(f"teller GET /api/v1/balances (JWT + ledger read): {statistics.median(teller_rps):,.0f} req/s")
    print(f"ratio {ratio:.2f}x  target >= {RATIO_TARGET}x  {'PASS' if ratio >= RATIO_TARGET else 'MISS'}")
    print(f"p99 {p99:.1f} ms  target < {P99_TARGET_MS:.0f} ms  {'PASS' if p99 < P99_TARGET_MS else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
