"""Write data/README.md: every data file, the command that made it, its wall time (from
the file itself) and its size.

    python plotting/data_manifest.py            # rewrites data/README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from marl_dmpc.results import ResultFileError, load_result

#: Every data file and the command that makes it (run from the repository's root).
COMMANDS = {
    "example_1/distributed.pkl": "python example_1/example_1.py --steps 20000 --seed 1 "
    "--no-progress --out data/example_1/distributed.pkl",
    "example_1/centralized.pkl": "python example_1/example_1.py --steps 20000 --seed 1 "
    "--centralized --no-progress --out data/example_1/centralized.pkl",
    "example_1/distributed_eval.pkl": "python example_1/evaluate.py data/example_1/distributed.pkl "
    "--out data/example_1/distributed_eval.pkl",
    "example_1/baselines.pkl": "python example_1/baselines.py --out data/example_1/baselines.pkl",
    "example_1/admm_dual_error.pkl": "python example_1/admm_dual_error.py "
    "--out data/example_1/admm_dual_error.pkl",
    "power_system/distributed.pkl": "python power_system/q_learning_power.py --episodes 100 "
    "--seed 1 --no-progress --out data/power_system/distributed.pkl",
    "power_system/centralized.pkl": "python power_system/q_learning_power.py --episodes 100 "
    "--seed 1 --centralized --no-progress --out data/power_system/centralized.pkl",
    "power_system/distributed_eval.pkl": "python power_system/evaluate.py "
    "data/power_system/distributed.pkl --out data/power_system/distributed_eval.pkl",
    "power_system/centralized_eval.pkl": "python power_system/evaluate.py "
    "data/power_system/centralized.pkl --out data/power_system/centralized_eval.pkl",
    "power_system/baselines.pkl": "python power_system/baselines.py "
    "--out data/power_system/baselines.pkl",
}

HEADER = """# Data: the full reproduction runs

Every file here was written by this repository's scripts with the command beside it (run
from the repository's root, on a 2-core machine); `python plotting/make_figures.py` draws
the paper's figures from them and `python plotting/data_manifest.py` rewrites this list.
The format of each file is described in docs/results.md. Wall
times are the ones the files record (the work itself, without Python's start-up).

| file | command | wall time | size |
|---|---|---|---|
"""


def duration(seconds: float) -> str:
    """``seconds`` as minutes and seconds."""
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes)} min {seconds:.0f} s"


def data_files(data: Path) -> list[dict]:
    """Every data file of :data:`COMMANDS`: its name, command, whether it exists, and if so
    its result (loaded) and size in MB."""
    files = []
    for name, command in COMMANDS.items():
        path = data / name
        entry = {"name": name, "command": command, "result": None, "size_mb": None}
        if path.exists():
            try:
                entry["result"] = load_result(path)
            except ResultFileError as err:
                raise SystemExit(f"error: {path}: {err}") from None
            if "wall_time_s" not in entry["result"]:
                raise SystemExit(f"error: {path}: no wall_time_s")
            entry["size_mb"] = path.stat().st_size / 2**20
        files.append(entry)
    return files


def manifest(data: Path) -> str:
    rows = []
    for f in data_files(data):
        if f["result"] is None:
            rows.append(f"| `{f['name']}` | `{f['command']}` | not yet made | |")
            continue
        wall = duration(float(f["result"]["wall_time_s"]))
        rows.append(f"| `{f['name']}` | `{f['command']}` | {wall} | {f['size_mb']:.1f} MB |")
    total = sum(p.stat().st_size for p in data.rglob("*.pkl")) / 2**20
    return HEADER + "\n".join(rows) + f"\n\nTotal: {total:.1f} MB.\n"


def main() -> int:
    data = Path(__file__).resolve().parent.parent / "data"
    (data / "README.md").write_text(manifest(data))
    print(f"wrote {data / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
