"""The mutation check: each named mutation applied in turn, seeds run until one kills it (an oracle fails).

Prints a table (mutation, killed or survived, by which seed and oracle, in what time) and answers 1 if any
mutation outside ``WEAK`` survived its budget of seeds: a surviving mutation is a hole in the simulator
(the weak ones are holes still open, listed in the table).
"""

from __future__ import annotations

import time

from tests.simulation.mutations import BACKENDS, CHAINS, MUTATIONS, WAITING, WEAK
from tests.simulation.run import backend_for, command_for, run_seed

__all__ = ["SEEDS_PER_MUTATION", "check_mutations"]

SEEDS_PER_MUTATION = 10


def check_mutations(names: list[str] | None, *, start: int, steps: int,
                    seeds_per_mutation: int = SEEDS_PER_MUTATION) -> int:
    # Unnamed: the ones the check must kill. A weak one runs its whole budget of seeds and survives anyway (2 of
    # the check's 3 minutes), so it runs when named: ``--mutations credit_before_confirmations``.
    names = names or sorted(set(MUTATIONS) - WEAK)
    rows: list[tuple[str, str, str, str, str]] = []
    for name in names:
        started = time.monotonic()
        verdict, by, oracle = "SURVIVED", "-", "-"
        for seed in range(start, start + seeds_per_mutation):
            result = run_seed(seed, backend=BACKENDS.get(name) or backend_for(seed), steps=steps, mutation=name,
                              chain=CHAINS.get(name, "sim"))
            if not result.ok:
                verdict, by = "killed", f"{seed} [{result.backend}]"
                oracle = result.violations[0].oracle
                print(f"  {name}: {result.violations[0]}\n    re-run: {command_for(result)}", flush=True)
                break
        rows.append((name, verdict, by, oracle, f"{time.monotonic() - started:.1f} s"))
        print(f"{name}: {verdict} by {by} ({oracle}) in {rows[-1][4]}", flush=True)
    print()
    print(f"{'mutation':40} {'verdict':9} {'seed':18} {'oracle':12} time")
    for row in rows:
        print(f"{row[0]:40} {row[1]:9} {row[2]:18} {row[3]:12} {row[4]}")
    for name, lever in sorted(WAITING.items()):
        print(f"{name:40} {'waiting':9} for {lever}")
    survived = [row[0] for row in rows if row[1] != "killed"]
    failing = [name for name in survived if name not in WEAK]
    print(f"{len(rows) - len(survived)} of {len(rows)} mutations killed" + (f"; survived: {survived}" if survived
                                                                             else "")
          + (f" (weak, not failing the check: {sorted(set(survived) & WEAK)})" if set(survived) & WEAK else ""))
    return 1 if failing else 0
