"""The sweep command (docs/sweeps.md): ``python -m marl_dmpc.sweep EXAMPLE ...`` runs or
continues a sweep, ``python -m marl_dmpc.sweep report DIR|SUMMARY ...`` tabulates and
draws sweeps, ``python -m marl_dmpc.sweep summarize DIR --out FILE`` writes a sweep's
compact summary."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..cli import (
    OneLineArgumentParser,
    add_config_flags,
    add_config_sources,
    fail,
    nonnegative_int,
    parse_config,
    positive_int,
)
from ..driver import EXIT_CODES
from ..files import OutputError
from .plan import (
    SweepError,
    default_folder,
    examples,
    load_example,
    manifest,
    parse_seeds,
    parse_set,
    plan,
    read_manifest,
    write_or_check_manifest,
)


def _parser() -> tuple[OneLineArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command's parser and its examples' subparsers."""
    parser = OneLineArgumentParser(prog="python -m marl_dmpc.sweep", description=__doc__)
    subs = {}
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="EXAMPLE|report|summarize"
    )
    for name in examples():
        example = load_example(name)
        sub = subs[name] = commands.add_parser(
            name, help=f"run or continue a sweep of {name}", description=example.description
        )
        sub.add_argument(
            "--dir",
            type=Path,
            default=None,
            help="the sweep folder; default runs/sweeps/<example>_<hash of the runs' settings>",
        )
        sub.add_argument("--seeds", default="1", help="seeds, e.g. 1-20 or 1,3,5-7; default 1")
        sub.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="FIELD=V1,V2,...",
            help="values of a setting to sweep (repeatable: the grid is their product)",
        )
        sub.add_argument(
            "--backend", choices=("local", "ray"), default="local", help="default local"
        )
        sub.add_argument(
            "--workers",
            type=positive_int,
            default=os.cpu_count() or 1,
            help="processes of the local backend; default the number of cores",
        )
        sub.add_argument("--address", default=None, help="Ray cluster to join (ray backend)")
        sub.add_argument(
            "--eval-episodes",
            type=nonnegative_int,
            default=1,
            help="evaluation episodes of each completed run's final policy; default 1",
        )
        sub.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        add_config_sources(sub)
        add_config_flags(sub, example.config_type)
    report = commands.add_parser("report", help="tables and figures of sweeps")
    report.add_argument(
        "sources", type=Path, nargs="+", metavar="SOURCE", help="sweep folders or summary files"
    )
    report.add_argument(
        "--out", type=Path, default=None, help="default SOURCE/report (of the first folder)"
    )
    report.add_argument(
        "--overwrite", action="store_true", help="replace the files of an earlier report"
    )
    summarize = commands.add_parser(
        "summarize", help="a sweep's compact summary (what its report needs), to commit"
    )
    summarize.add_argument(
        "dirs", type=Path, nargs="+", metavar="DIR", help="the sweep folder (or its chunks)"
    )
    summarize.add_argument("--out", type=Path, required=True, help="the summary file (.pkl)")
    summarize.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return parser, subs


def _run(sub: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from .backends import LocalBackend, RayBackend
    from .driver import run_sweep, summary

    example = load_example(args.command)
    # the base holds only what was given, so that a grid's value of `stabilized` can
    # switch on the preset of the safeguards the base does not set
    _, given = parse_config(sub, example.config_type, args)
    try:
        seeds = parse_seeds(args.seeds)
        grid = dict(parse_set(text, example.config_type) for text in args.set)
        base = {k: v for k, v in given.items() if k != "seed"}
        runs = plan(args.command, base, grid, seeds)
        folder = default_folder(args.command, runs) if args.dir is None else args.dir
        write_or_check_manifest(
            folder, manifest(args.command, base, grid, seeds, args.eval_episodes, runs)
        )
        asked = read_manifest(folder)
    except (SweepError, OutputError) as err:
        fail(str(err), EXIT_CODES["bad input"])
    try:
        backend = RayBackend(args.address) if args.backend == "ray" else LocalBackend(args.workers)
    except (RuntimeError, ConnectionError) as err:
        fail(f"--backend {args.backend}: {err}", EXIT_CODES["bad input"])
    print(f"{args.command}: {len(runs)} runs in {folder}", flush=True)
    try:
        outcome = run_sweep(folder, asked, backend, not args.no_progress)
    finally:
        backend.close()
    print(summary(outcome, folder))
    return outcome.exit_code


def main(argv: list[str] | None = None) -> int:
    parser, subs = _parser()
    args = parser.parse_args(argv)
    if args.command in ("report", "summarize"):
        from .report import write_report
        from .summary import SummaryError, write_summary

        try:
            if args.command == "summarize":
                return write_summary(args.dirs, args.out, args.overwrite)
            return write_report(args.sources, args.out, args.overwrite)
        except (SweepError, SummaryError, OutputError) as err:
            fail(str(err), EXIT_CODES["bad input"])
    return _run(subs[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
