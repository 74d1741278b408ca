"""Shared test wiring. Each area's fixtures live in tests/fixtures/<area>.py, loaded here."""

pytest_plugins = [
    "tests.fixtures.common",
    "tests.fixtures.browser",
    "tests.fixtures.store",
    "tests.fixtures.nats",
    "tests.fixtures.telegram",
    "tests.fixtures.payments",
    "tests.fixtures.chain",
    "tests.fixtures.http",
]
