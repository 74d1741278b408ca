"""The simulator in the normal suite: a few fixed seeds on both backends keep every oracle quiet, and a few
mutations are each killed by a seed known to kill them (the full mutation check is `make simulate`)."""

from __future__ import annotations

import pytest

from tests.simulation.mutations import BACKENDS, MUTATIONS
from tests.simulation.run import SeedResult, backend_for, command_for, run_seed

STEPS = 60


def _explained(result: SeedResult) -> str:
    return "\n".join([*map(str, result.violations), f"re-run: {command_for(result)}"])


@pytest.mark.parametrize(("seed", "backend"), [(1, "sqlite"), (2, "postgresql")])
def test_a_seeded_world_keeps_every_oracle_quiet(seed: int, backend: str) -> None:
    result = run_seed(seed, backend=backend, steps=STEPS)
    assert result.ok, _explained(result)
    assert result.calls > 10


# Mutations killed within a seed or two (the rest, which wait for a crash or a deep reorg at the right moment,
# are in the mutation check's budget, `make simulate`): each must make an oracle fail within KILL_SEEDS seeds.
QUICK_KILLS = ("overdraft_check_skipped", "fee_posted_twice", "min_withdrawal_not_checked", "daily_limit_not_checked")
KILL_SEEDS = 4


@pytest.mark.parametrize("name", QUICK_KILLS)
def test_a_mutation_of_the_money_path_is_killed(name: str) -> None:
    assert name in MUTATIONS
    for seed in range(1, KILL_SEEDS + 1):
        if not run_seed(seed, backend=BACKENDS.get(name) or backend_for(seed), steps=STEPS, mutation=name).ok:
            return
    pytest.fail(f"{name} survived seeds 1 to {KILL_SEEDS}")
