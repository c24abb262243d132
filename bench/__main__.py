"""Run the benchmarks and write ``bench/results.md``.

    python -m bench            # everything (takes a while)
    python -m bench --quick    # smaller data, a few minutes
    python -m bench --only wan # one group: wan (sync over an emulated satellite link), lan, tls, get,
                               # wire (bytes of a first sync of incompressible data),
                               # lean (hash passes, round trips, bytes of first reads),
                               # bundle (offline bundles against tar) or s3read (a large entry
                               # through a hub on S3 against s3fs on the same objects);
                               # with --only, only that group's figures in results.md change
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path

from .common import HERE, PLOTS, Result, update_section, write_results

GROUPS = ("wan", "wire", "lan", "tls", "get", "lean", "bundle", "s3read")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repetitions")
    parser.add_argument("--only", action="append", choices=GROUPS, help="run only this group")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--workdir", type=Path, help="keep data and logs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    PLOTS.mkdir(exist_ok=True)
    results: list[Result] = []
    headline: list[str] = []
    with tempfile.TemporaryDirectory(prefix="eurec4a-nt-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for name in args.only or GROUPS:
            module = importlib.import_module(f"bench.{name}")
            group = module.run(quick=args.quick, workdir=workdir / name)
            if args.only:
                update_section(args.out, name, group, module.headline(group))
                continue
            results += group
            headline += [*module.headline(group), ""]
            write_results(results, args.out, headline)
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
