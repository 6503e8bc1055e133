"""The paper's headline results beside this repository's, read from the pickles in
``data/``, as the Markdown tables of README.md's "Results" section.

    python plotting/results_table.py            # print the tables
    python plotting/results_table.py --readme   # rewrite them in README.md

The paper's values (docs/reproduction.md, the paper's results of each example) are the
only numbers written here; every other number comes from a data file, whose command
``plotting/data_manifest.py`` lists.
A missing data file leaves its rows out with a note.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from marl_dmpc.cli import OneLineArgumentParser, fail
from marl_dmpc.driver import EXIT_CODES
from marl_dmpc.files import OutputError, Outputs, write_atomic
from reproduction.plotting.data_manifest import check_data_folder, data_files

ROOT = Path(__file__).resolve().parent.parent
#: README.md's results block lies between these lines.
BEGIN, END = "<!-- results: begin -->", "<!-- results: end -->"

#: Example 1 (one 100-step evaluation episode): row -> (data file, label in the file or
#: None for its last controller (the most trained policy), the paper's cost, the paper's
#: steps with some x_i1 < 0 or None).
EXAMPLE_1 = {
    "untrained policy (0 updates)": ("distributed_eval", "after 0 updates", "~312", None),
    "learned distributed policy": ("distributed_eval", None, "~10.1 (10000 updates)", "2"),
    "nominal MPC, inaccurate model": ("baselines", "nominal, inaccurate model", "~360", "73"),
    "scenario MPC, 25 sampled models": ("baselines", "scenario K=25, sampled models", "~24.0", "0"),
    "scenario MPC, 25 copies of the true model": (
        "baselines",
        "scenario K=25, true model",
        "~7.7",
        None,
    ),
}
#: Example 1 on the release's own evaluation episode (its noise replayed; the baselines in
#: the release's formulation and with its scenario draws, the nominal MPC on the release's
#: nominal-MPC episode; docs/reproduction.md): row of :data:`EXAMPLE_1` -> (data file,
#: label or None as there).
EXAMPLE_1_RELEASE_EPISODE = {
    "untrained policy (0 updates)": ("distributed_eval_release_episode", "after 0 updates"),
    "learned distributed policy": ("distributed_eval_release_episode", None),
    "nominal MPC, inaccurate model": (
        "baselines_release_nominal_episode",
        "nominal, inaccurate model",
    ),
    "scenario MPC, 25 sampled models": (
        "baselines_release_episode",
        "scenario K=25, sampled models",
    ),
    "scenario MPC, 25 copies of the true model": (
        "baselines_release_episode",
        "scenario K=25, true model",
    ),
}
#: The power system on the release's own evaluation episodes (each file's load noise
#: replayed; the baselines in the release's formulation): row of :data:`POWER` -> (data
#: file, label or None).
POWER_RELEASE_EPISODES = {
    "learned distributed policy": ("distributed_eval_release_episodes", None),
    "learned centralized policy": ("centralized_eval_release_episodes", None),
    "nominal MPC, the release's formulation": ("baselines_release_nominal_episodes", "nominal"),
    **{
        f"scenario MPC, K = {k}, the release's formulation": (
            f"baselines_release_scenario_{k}_episodes",
            f"scenario K={k}",
        )
        for k in (50, 79, 100)
    },
}
#: Power system (100 evaluation episodes): row -> (data file, label or None for the
#: file's last controller, the paper's mean cost, the paper's share of violating steps).
POWER = {
    "learned distributed policy": ("distributed_eval", None, "~274", "0 %"),
    "learned centralized policy": ("centralized_eval", None, "~265", "0 %"),
    "nominal MPC": ("baselines", "nominal", "~349", "~10.1 %"),
    "scenario MPC, K = 50": ("baselines", "scenario K=50", "~315 to ~322", "~2.9 to ~4.3 %"),
    "scenario MPC, K = 79": ("baselines", "scenario K=79", "~315 to ~322", "~2.9 to ~4.3 %"),
    "scenario MPC, K = 100": ("baselines", "scenario K=100", "~315 to ~322", "~2.9 to ~4.3 %"),
    # the release's formulation (angle bounds on x_1..x_{N-1}; docs/reproduction.md)
    "nominal MPC, the release's formulation": ("baselines_release", "nominal", "~349", "~10.1 %"),
    **{
        f"scenario MPC, K = {k}, the release's formulation": (
            "baselines_release",
            f"scenario K={k}",
            "~315 to ~322",
            "~2.9 to ~4.3 %",
        )
        for k in (50, 79, 100)
    },
}


def _controller(result: dict, name: str, label: str | None) -> tuple[int, str]:
    """The index of the controller ``label`` (None: the last one) and the row's name (with
    the number of updates of a learned policy)."""
    labels = list(result["labels"])
    if label is None:
        if "updates" in result:
            name = f"{name}, after {int(np.ravel(result['updates'])[-1])} updates"
        return len(labels) - 1, name
    if label not in labels:
        fail(
            f"no controller {label!r} in the data file (it has {', '.join(labels)})",
            EXIT_CODES["bad input"],
        )
    return labels.index(label), name


def _paper_value(text: str) -> float | None:
    """The paper's number in a table entry (``"~10.1 (10000 updates)"`` -> 10.1); None
    for a range or no number."""
    found = re.match(r"~?([0-9.]+)", text)
    return None if found is None or " to " in text else float(found.group(1))


def _cost_cells(costs: np.ndarray, paper: str, single_paper_episode: bool) -> list[str]:
    """Our cells of one controller's episode costs. Where the paper's number is one
    episode's cost: the first episode's cost, the mean +- standard deviation over the
    episodes and where the paper's number falls among them (the share of our episodes
    that cost less); where it is a mean: our mean +- standard deviation."""
    spread = "–" if costs.size == 1 else f"{costs.mean():.1f} ± {costs.std(ddof=1):.1f}"
    if not single_paper_episode:
        return [f"{costs.mean():.1f}" if costs.size == 1 else spread]
    value = _paper_value(paper)
    below = "–" if value is None or costs.size == 1 else f"{100.0 * np.mean(costs < value):.0f} %"
    return [f"{costs[0]:.1f}", spread, below]


def comparison_table(
    results: Mapping[str, dict | None],
    folder: str,
    rows: Mapping[str, tuple[str, str | None, str, str | None]],
    header: str,
    violations: Callable[[dict, int], str],
    single_paper_episode: bool = False,
    paper_episode: Mapping[str, tuple[str, str | None]] | None = None,
) -> list[str]:
    """A Markdown table of ``rows`` (as :data:`EXAMPLE_1`; data files under ``folder``):
    the paper's cost, with ``paper_episode`` (as :data:`EXAMPLE_1_RELEASE_EPISODE`) ours
    on the paper's own episode, ours (:func:`_cost_cells`; ``header`` names its columns),
    the paper's violations and ours (``violations(result, controller)``); a note for
    every missing file."""
    table = [header, "|---" * (header.count("|") - 1) + "|"]
    missing = set()
    for name, (file, label, paper_cost, paper_violations) in rows.items():
        path = f"{folder}/{file}.pkl"
        result = results.get(path)
        if result is None:
            missing.add(path)
            continue
        c, row = _controller(result, name, label)
        costs = np.asarray(result["episode_costs"][c], dtype=float)
        cells = _cost_cells(costs, paper_cost, single_paper_episode)
        if paper_episode is not None:
            cells.insert(0, _episode_cell(results, folder, name, paper_episode, missing))
        table.append(
            f"| {row} | {paper_cost} | {' | '.join(cells)} | {paper_violations or '–'} "
            f"| {violations(result, c)} |"
        )
    return table + [f"\n({path} not made yet)" for path in sorted(missing)]


def _episode_cell(
    results: Mapping[str, dict | None],
    folder: str,
    name: str,
    sources: Mapping[str, tuple[str, str | None]],
    missing: set[str],
) -> str:
    """Row ``name``'s (mean) cost on the paper's own episode(s) (``sources``), or "–"."""
    if name not in sources:
        return "–"
    file, label = sources[name]
    path = f"{folder}/{file}.pkl"
    result = results.get(path)
    if result is None:
        missing.add(path)
        return "–"
    c, _ = _controller(result, name, label)
    return f"{np.asarray(result['episode_costs'][c], dtype=float).mean():.1f}"


#: Example 1's learned policies on the paper's episode and on 20 episodes of shared noise
#: (the release's noise model): row -> (data file on the paper's episode, data file over
#: the shared-noise episodes); a file of several final policies (a study's seeds) gives
#: their median and range, a file of checkpoints its last one.
EXAMPLE_1_POLICIES = {
    "ours, seed 1": ("distributed_eval_release_episode", "distributed_eval_shared_noise"),
    "ours, the 20-seed study's completed runs": (
        "study_eval_release_episode",
        "study_eval_shared_noise",
    ),
    "the release's published run (its line_81 files)": (
        "line_81_eval_release_episode",
        "line_81_eval_shared_noise",
    ),
}


def _final_policies(result: dict | None, per_policy: Callable[[np.ndarray], float]) -> str:
    """The cost of a file's last checkpoint, or the median and range over a study's final
    policies (``per_policy`` of each one's episode costs)."""
    if result is None:
        return "–"
    costs = np.asarray(result["episode_costs"], dtype=float)
    if "seeds" not in result:
        return f"{per_policy(costs[-1]):.1f} ({int(np.ravel(result['updates'])[-1])} updates)"
    values = np.array([per_policy(c) for c in costs])
    paper = _paper_value(EXAMPLE_1["learned distributed policy"][2])
    return (
        f"{np.median(values):.1f} ({values.min():.1f} to {values.max():.1f}; "
        f"{values.size} runs, {int(np.sum(values < paper))} below {paper})"
    )


def policies_table(results: Mapping[str, dict | None]) -> list[str]:
    """:data:`EXAMPLE_1_POLICIES` as a Markdown table."""
    table = [
        "| learned policy | cost, the paper's episode | mean cost, 20 episodes of shared noise |",
        "|---|---|---|",
    ]
    for name, (episode, shared) in EXAMPLE_1_POLICIES.items():
        one = _final_policies(results.get(f"example_1/{episode}.pkl"), lambda c: c[0])
        many = _final_policies(results.get(f"example_1/{shared}.pkl"), np.mean)
        table.append(f"| {name} | {one} | {many} |")
    return table


def _violating_steps(result: dict, c: int) -> str:
    """The first episode's steps with a violation, and with several episodes their
    mean."""
    steps = np.asarray(result["violating_steps"][c], dtype=float)
    first = str(int(steps[0]))
    return first if steps.size == 1 else f"{first} (mean {steps.mean():.1f})"


def _violating_share(result: dict, c: int) -> str:
    steps = np.asarray(result["costs"][c]).size
    return f"{100.0 * float(np.sum(result['violating_steps'][c])) / steps:.2f} %"


def tables(data: Path) -> str:
    files = data_files(data)  # every file loaded once
    results = {f["name"]: f["result"] for f in files}
    example_1 = comparison_table(
        results,
        "example_1",
        EXAMPLE_1,
        "| controller | cost, paper | ours, the paper's episode | ours, episode 1 | "
        "ours, mean ± std | our episodes below the paper's | steps with x_i1 < 0, paper "
        "| ours |",
        _violating_steps,
        single_paper_episode=True,
        paper_episode=EXAMPLE_1_RELEASE_EPISODE,
    )
    power = comparison_table(
        results,
        "power_system",
        POWER,
        "| controller | mean episode cost, paper | ours, the paper's episodes | ours, mean ± std "
        "| violating steps, paper | ours |",
        _violating_share,
        paper_episode=POWER_RELEASE_EPISODES,
    )
    return "\n".join(
        [
            "Example 1, cost of 100-step evaluation episodes from the paper's initial state "
            "(the paper: one episode; ours: on the paper's own episode, its noise replayed "
            "from the release's files and the baselines in the release's formulation; then "
            "our first episode, and the mean and standard deviation over the episodes of "
            "the data file, each with its own noise):",
            "",
            *example_1,
            "",
            "Example 1's final learned policies on the paper's episode (the paper: "
            f"{EXAMPLE_1['learned distributed policy'][2]}) "
            "and over 20 episodes of the release's noise model (one noise value per step "
            "shared by the agents):",
            "",
            *policies_table(results),
            "",
            "Power system, episode cost over 100 evaluation episodes (ours: on the paper's "
            "own episodes, each file's load noise replayed and the baselines in the "
            "release's formulation; then over our episodes; violating: some "
            "|dtheta_i| > 0.1):",
            "",
            *power,
            "",
            "The commands, wall times (2 cores) and sizes of the data files: data/README.md.",
        ]
    )


def rewrite_block(
    path: Path, block: str, markers: tuple[str, str] = (BEGIN, END), command: str = ""
) -> None:
    """Replace the text between the ``markers`` lines of ``path`` (README.md) with
    ``block`` and a note naming ``command`` (atomically; the rest of the file is kept
    as it is)."""
    begin, end = markers
    bad_input = EXIT_CODES["bad input"]
    try:
        text = path.read_text()
    except OSError as err:
        fail(f"cannot read {path}: {err.strerror}", bad_input)
    if text.count(begin) != 1 or text.count(end) != 1:
        fail(f"{path} needs one '{begin}' line and one '{end}' line", bad_input)
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    command = command or "python plotting/results_table.py --readme"
    new = (
        f"{head}{begin}\n<!-- written by `{command}`; do not edit by hand -->\n\n"
        f"{block}\n\n{end}{tail}"
    )
    try:
        write_atomic(path, new.encode(), replace=True)
    except (OutputError, OSError) as err:
        fail(f"cannot write {path}: {err}", bad_input)


def write_figure(figure: Any, path: Path, flag: str = "--figures") -> None:
    """Write ``figure`` (a matplotlib figure, then closed) as a PNG at ``path``
    (atomically, replacing the script's own earlier output); a failure ends the script
    with a one-line error naming ``flag``."""
    import matplotlib.pyplot as plt

    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    outputs = Outputs(overwrite=True)  # --write replaces the script's own outputs
    try:
        outputs.write(outputs.claim(path, flag), image.getvalue())
    except (OutputError, OSError) as err:
        fail(str(err), EXIT_CODES["bad input"])
    print(f"wrote {path}")


def rewrite_readme(readme: Path, block: str) -> None:
    """Replace the text between README.md's results markers with ``block``."""
    rewrite_block(readme, block)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="data folder")
    parser.add_argument(
        "--readme", action="store_true", help="rewrite the tables in README.md instead of printing"
    )
    args = parser.parse_args(argv)
    check_data_folder(args.data)  # a misspelt folder must not empty the README's tables
    block = tables(args.data)
    if args.readme:
        rewrite_readme(ROOT / "README.md", block)
        print(f"rewrote the results tables in {ROOT / 'README.md'}")
    else:
        print(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
