"""Start Teller: `python main.py --dev` or `python main.py --config teller.toml`."""

from teller.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
