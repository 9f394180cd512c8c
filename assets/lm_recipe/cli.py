"""`lm-assets`: build or check section 7's model, tokenizer and SAEs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

PRESETS = {
    "committed": "the committed assets: 2 CPU cores, about an hour",
    "one-gpu": "a bigger model and SAEs for one GPU, a few minutes",
    "smoke": "seconds, no network: a tiny corpus from installed packages (the tests)",
}


def main(argv: list[str] | None = None) -> int:
    from lm_recipe import recipe  # numpy only; torch is imported by `build`

    parser = argparse.ArgumentParser(prog="lm-assets", description=recipe.__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="train and write the assets")
    build.add_argument("--preset", choices=list(PRESETS), default="committed",
                       help="; ".join(f"{k}: {v}" for k, v in PRESETS.items()))
    build.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    build.add_argument("--out", type=Path, default=recipe.ASSET_DIR)
    build.add_argument("--cache", type=Path, default=None)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--max-minutes", type=float, default=None)
    build.add_argument("--stages", choices=("all", "data", "train"), default="all",
                       help="data: corpus, tokenizer and tokens only (needs the package index); train: the rest")
    check = commands.add_parser("check", help="verify the assets against their checksum manifest")
    check.add_argument("--out", type=Path, default=recipe.ASSET_DIR)
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = recipe.check_assets(args.out)
        for problem in problems:
            print(problem)
        print("assets OK" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    recipe.build_assets(args.out, args.preset, args.device, args.cache, args.seed, args.max_minutes, args.stages)
    return 0


if __name__ == "__main__":
    sys.exit(main())
