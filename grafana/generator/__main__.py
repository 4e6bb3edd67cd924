"""`python -m grafana.generator [--check]`: write grafana/dashboards/*.json, or check them."""

from __future__ import annotations

import argparse
import sys

from grafana.generator.build import DASHBOARDS_DIR, differences, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grafana.generator", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the committed dashboards differ from the generator's",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = differences()
        for name in stale:
            print(f"{DASHBOARDS_DIR / name}: out of date; run python -m grafana.generator")
        return 1 if stale else 0
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
