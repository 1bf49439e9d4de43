"""``python -m islandbridge.devtools.simulator OUT --residents 3000 --seed 7``: generate a street from the shell."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from islandbridge.devtools.simulator import generate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m islandbridge.devtools.simulator", description=__doc__)
    parser.add_argument(
        "out_dir", type=Path, help="folder to write registry/, grid/, civil/, iot/ and truth/ into"
    )
    parser.add_argument("--residents", type=int, default=3000, help="people in the street (300..300000)")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same bytes")
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 11, 20), help="YYYY-MM-DD"
    )
    parser.add_argument("--street-code", default="511403001", help="nine-digit street code")
    args = parser.parse_args(argv)
    summary = generate(
        args.out_dir, residents=args.residents, seed=args.seed, as_of=args.as_of, street_code=args.street_code
    )
    print(json.dumps(summary, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
