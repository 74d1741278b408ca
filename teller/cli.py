"""Command line: ``teller --dev`` or ``teller --config teller.toml`` (``TELLER_CONFIG`` also works)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from teller.config import ConfigError, Settings, load_settings
from teller.errors import StartFailed
from teller.log import configure_logging, get_logger

__all__ = ["main"]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="teller", description="Teller: custody and payments backend")
    parser.add_argument("--config", help="path to teller.toml (default: $TELLER_CONFIG)")
    parser.add_argument("--dev", action="store_true",
                        help="dev mode: SQLite under ./var, a local anvil with a demo token, the Paystar sandbox, "
                             "Telegram messages to the log")
    parser.add_argument("--var-dir", default="var", help="where dev mode keeps its state (default: ./var)")
    parser.add_argument("--log-level", default=os.environ.get("TELLER_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    configure_logging(level=args.log_level.upper())
    log = get_logger(component="cli")
    from teller.app import run_dev, run_with_settings  # imported late: argument errors stay fast

    try:
        if args.dev:
            asyncio.run(run_dev(var_dir=args.var_dir))
            return 0
        path = args.config or os.environ.get("TELLER_CONFIG")
        if not path:
            print("teller: give --config PATH (or TELLER_CONFIG), or --dev", file=sys.stderr)
            return 2
        asyncio.run(run_with_settings(_load(path)))
        return 0
    except ConfigError as exc:
        print(f"teller: configuration error: {exc}", file=sys.stderr)
        log.error("config.invalid", error=str(exc))
        return 2
    except StartFailed as exc:  # what was started before the failure is stopped by then
        print(f"teller: {exc.message}", file=sys.stderr)
        log.error("teller.start_failed", error=exc.message)
        return 1
    except KeyboardInterrupt:
        return 0


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except OSError as exc:  # a directory, no permission (a missing file is already a ConfigError)
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ConfigError(f"cannot read {path}: {reason}") from exc
