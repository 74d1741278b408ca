"""Money-path simulator benchmark (issue 16): how much simulated world a wall second buys. Figures to watch,
not targets to tune (so no PASS/MISS).

  A  SEEDS seeds of STEPS steps on the simulated node (SQLite and PostgreSQL by the seed's parity): simulated
     seconds per wall second (the chain's blocks times its 12 s block time, over the run's wall time),
     seeds per minute, HTTP calls and crashes per seed.
  B  the time to kill each of KILL_MUTATIONS (seeds from 1 until one kills it).

Usage: ``.venv/bin/python bench/simulate.py`` (a minute or two).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # bench/http.py would shadow the stdlib's http
else:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from teller.log import configure_logging
from tests.simulation.evm_node import BLOCK_TIME_S
from tests.simulation.mutations import BACKENDS
from tests.simulation.run import backend_for, run_seed

SEEDS = 6
STEPS = 60
KILL_MUTATIONS = ("overdraft_check_skipped", "daily_limit_not_checked", "outbox_outside_the_ledger_transaction")
KILL_SEEDS_MAX = 8


def main() -> int:
    configure_logging(level="CRITICAL", stream=sys.stderr)
    started = time.monotonic()
    blocks = calls = crashes = failed = 0
    for seed in range(1, SEEDS + 1):
        result = run_seed(seed, steps=STEPS)
        blocks, calls, crashes, failed = (blocks + result.blocks, calls + result.calls, crashes + result.crashes,
                                          failed + (not result.ok))
    wall_s = time.monotonic() - started
    print(f"A  {SEEDS} seeds x {STEPS} steps in {wall_s:.1f} s: {blocks * BLOCK_TIME_S / wall_s:.0f} simulated s per"
          f" wall s, {SEEDS * 60 / wall_s:.1f} seeds/min, {calls / SEEDS:.0f} calls and {crashes / SEEDS:.1f}"
          f" crashes a seed, {failed} failed")
    for name in KILL_MUTATIONS:
        started = time.monotonic()
        killer = None
        for seed in range(1, KILL_SEEDS_MAX + 1):
            if not run_seed(seed, backend=BACKENDS.get(name) or backend_for(seed), steps=STEPS, mutation=name).ok:
                killer = seed
                break
        print(f"B  {name}: " + (f"killed by seed {killer}" if killer else "SURVIVED")
              + f" in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
