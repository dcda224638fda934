"""Run directories read back: runs, their swept settings, seed-aggregated tables and curves.

A run directory is any folder holding `metrics.jsonl` (one JSON object per line with `step` and
`split`), normally with Hydra's `.hydra/config.yaml` and `.hydra/overrides.yaml`, and `DONE` or
`FAILED` once it ended. Nothing here trains or loads a checkpoint; `experiments/figures.py` draws
from it.
Every output is deterministic: runs are sorted by path, groups keep the order in which they first
appear, and numbers are written with fixed formats.
"""

import csv
import dataclasses
import io
import json
import math
import os
import re
import statistics
from pathlib import Path

import yaml

# Final test metrics reported when present, then the run's wall time.
METRICS = (
    "label_error_rate",
    "alignment_accuracy",
    "boundary_error",
    "boundaries_within_2",
    "frame_accuracy",
    "accuracy",
)
RATES = {
    "label_error_rate",
    "alignment_accuracy",
    "boundaries_within_2",
    "frame_accuracy",
    "accuracy",
}  # shown in % in markdown
SECONDS = "seconds"


def natural_key(text: str) -> list:
    """Sort key that puts multirun job 10 after job 9."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def parse_overrides(lines: list[str]) -> dict[str, str]:
    """Hydra's overrides.yaml entries ("key=value", "+group=option") -> {key: value}, "+" dropped;
    deletions ("~key") are left out."""
    out = {}
    for entry in lines:
        key, _, value = str(entry).partition("=")
        if key.startswith("~"):
            continue
        out[key.lstrip("+")] = value
    return out


@dataclasses.dataclass
class Run:
    """One run directory. `status` is "done" (DONE exists), "failed" (FAILED exists; `reason` is its
    last line, the error) or "unfinished"."""

    path: Path
    name: str  # path relative to the folder searched, for messages and runs.csv
    overrides: dict[str, str]  # parsed .hydra/overrides.yaml: {key: value}, "+" dropped
    config: dict
    lines: list[dict]
    status: str
    reason: str = ""
    override_text: dict[str, str] = dataclasses.field(
        default_factory=dict
    )  # key -> the entry as written ("+schedule=ctc")

    @classmethod
    def read(cls, path: Path, name: str) -> "Run":
        hydra = path / ".hydra"
        overrides = (
            yaml.safe_load((hydra / "overrides.yaml").read_text()) if (hydra / "overrides.yaml").exists() else []
        )
        config = yaml.safe_load((hydra / "config.yaml").read_text()) if (hydra / "config.yaml").exists() else {}
        texts = [t for t in (path / "metrics.jsonl").read_text().splitlines() if t.strip()]
        lines = []
        for number, text in enumerate(texts, 1):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                if number < len(texts):  # only a run killed mid-write may leave a partial last line
                    raise ValueError(f"{path / 'metrics.jsonl'}: line {number} is not JSON") from None
        status, reason = "unfinished", ""
        if (path / "DONE").exists():
            status = "done"
        elif (path / "FAILED").exists():
            status, reason = "failed", ((path / "FAILED").read_text().strip().splitlines() or [""])[-1]
        overrides = [str(entry) for entry in overrides or []]
        text = {entry.partition("=")[0].lstrip("+"): entry for entry in overrides if not entry.startswith("~")}
        return cls(path, name, parse_overrides(overrides), config or {}, lines, status, reason, text)

    def split(self, split: str) -> list[dict]:
        return [line for line in self.lines if line.get("split") == split]

    @property
    def test(self) -> dict:
        """The last test line (a resumed run writes it again), or {}."""
        tests = self.split("test")
        return tests[-1] if tests else {}

    @property
    def seconds(self) -> float | None:
        """Wall time: the last "timing" end line's seconds."""
        ends = [line for line in self.split("timing") if line.get("event") == "end" and "seconds" in line]
        return float(ends[-1]["seconds"]) if ends else None

    @property
    def seed(self):
        return self.setting("seed")

    def setting(self, key: str):
        """A setting by its dotted key: the run's override if it has one, else the resolved config."""
        if key in self.overrides:
            return self.overrides[key]
        node = self.config
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def checkpoint_steps(self) -> list[int]:
        folder = self.path / "checkpoints"
        return (
            sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else []
        )


def find_runs(roots: list[Path]) -> list[Run]:
    """Every folder holding metrics.jsonl under the given folders (each may itself be a run), sorted
    by path in natural order; names are relative to the folders' common parent."""
    roots = [Path(r) for r in roots]
    paths = sorted(
        {p.parent.resolve() for root in roots if root.is_dir() for p in root.rglob("metrics.jsonl")},
        key=lambda p: natural_key(p.as_posix()),
    )
    if not paths:
        return []
    base = Path(os.path.commonpath([str(r.resolve()) for r in roots if r.is_dir()]))
    if base in paths:  # a folder given is itself a run: name runs from its parent
        base = base.parent
    return [Run.read(p, p.relative_to(base).as_posix()) for p in paths]


def swept_keys(runs: list[Run], exclude=("seed",)) -> list[str]:
    """Override keys whose value differs between runs (a key missing from a run counts as a value),
    in the order they first appear; `seed` is excluded, since seeds are what a row aggregates."""
    order = []
    for run in runs:
        order += [k for k in run.overrides if k not in order and k not in exclude]
    return [k for k in order if len({run.overrides.get(k) for run in runs}) > 1]


def common_overrides(runs: list[Run], keys: list[str]) -> list[str]:
    """Overrides shared by every run (other than the grouping keys and seed), as "key=value"."""
    if not runs:
        return []
    shared = dict(runs[0].overrides)
    for run in runs[1:]:
        shared = {k: v for k, v in shared.items() if run.overrides.get(k) == v}
    return [runs[0].override_text[k] for k in shared if k not in keys and k != "seed"]


def group_runs(runs: list[Run], keys: list[str]) -> list[tuple[tuple, list[Run]]]:
    """[(values of `keys`, runs)] in the order each combination first appears."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(_text(run.setting(k)) for k in keys), []).append(run)
    return list(groups.items())


def group_label(keys: list[str], values: tuple) -> str:
    """A group's name, e.g. "schedule=ctc, states_per_symbol=2": keys by their last dotted part
    (in full where two would clash)."""
    if not keys:
        return "all runs"
    short = [k.rsplit(".", 1)[-1] for k in keys]
    names = short if len(set(short)) == len(short) else keys
    return ", ".join(f"{k}={v}" for k, v in zip(names, values))


def _text(value) -> str:
    return "-" if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class Stats:
    """mean, sample standard deviation (ddof=1; None for one value) and count of the values given."""

    mean: float
    std: float | None
    n: int


def aggregate(values) -> Stats | None:
    """Stats of the finite numbers among `values` (None and NaN skipped); None if there are none."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None
    return Stats(statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else None, len(vals))


def summarize(runs: list[Run], keys: list[str]) -> list[dict]:
    """One row per group of finished runs: {key: value, "n": runs, metric: Stats or None, ...}
    over the final test metrics (METRICS) and the wall time (SECONDS)."""
    rows = []
    for values, members in group_runs([r for r in runs if r.status == "done"], keys):
        row = dict(zip(keys, values))
        row["n"] = len(members)
        for metric in METRICS:
            row[metric] = aggregate(r.test.get(metric) for r in members)
        row[SECONDS] = aggregate(r.seconds for r in members)
        rows.append(row)
    return rows


def reported_metrics(rows: list[dict]) -> list[str]:
    """The METRICS that at least one row has, then SECONDS."""
    return [m for m in METRICS if any(row[m] is not None for row in rows)] + [SECONDS]


def curve(runs: list[Run], split: str, metric: str):
    """(steps, mean, low, high) of `metric` in the `split` lines of `runs`, over the runs that have a
    value at each step (min-max spread); None if no run has the metric."""
    by_step: dict[int, list[float]] = {}
    for run in runs:
        for line in run.split(split):
            value = line.get(metric)
            if isinstance(value, (int, float)) and math.isfinite(value):
                by_step.setdefault(int(line["step"]), []).append(float(value))
    if not by_step:
        return None
    steps = sorted(by_step)
    return (
        steps,
        [statistics.fmean(by_step[s]) for s in steps],
        [min(by_step[s]) for s in steps],
        [max(by_step[s]) for s in steps],
    )


# -- tables ----------------------------------------------------------------------------------------


def _csv_number(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def to_csv(rows: list[dict], keys: list[str]) -> str:
    """Group keys, n, then `METRIC_mean` and `METRIC_std` for each reported metric (fractions, not %;
    boundary error in frames, time in seconds); an empty cell where there is no value."""
    metrics = reported_metrics(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*keys, "n", *[f"{m}_{s}" for m in metrics for s in ("mean", "std")]])
    for row in rows:
        cells = [row[k] for k in keys] + [row["n"]]
        for m in metrics:
            stats = row[m]
            cells += [_csv_number(stats and stats.mean), _csv_number(stats and stats.std)]
        writer.writerow(cells)
    return out.getvalue()


def _cell(metric: str, stats: Stats | None) -> str:
    if stats is None:
        return "–"
    scale, digits = (100.0, 2) if metric in RATES else (1.0, 1) if metric == SECONDS else (1.0, 3)
    text = f"{stats.mean * scale:.{digits}f}"
    return text if stats.std is None else f"{text} ± {stats.std * scale:.{digits}f}"


HEADINGS = {
    "label_error_rate": "label error rate %",
    "alignment_accuracy": "alignment accuracy %",
    "boundary_error": "boundary error (frames)",
    "boundaries_within_2": "boundaries within 2 frames %",  # 20 ms at a 10 ms hop
    "frame_accuracy": "frame accuracy %",
    "accuracy": "accuracy %",
    SECONDS: "wall time (s)",
}


def to_markdown(rows: list[dict], keys: list[str], runs: list[Run]) -> str:
    """The results table with a short header (what the cells are, the overrides all runs share) and
    a list of the runs left out (failed or unfinished)."""
    metrics = reported_metrics(rows)
    finished = sum(r.status == "done" for r in runs)
    lines = [
        "# Results",
        "",
        f"Final test metrics of {finished} finished runs, grouped by the swept settings; seeds aggregated as",
        "mean ± sample standard deviation over the n runs of a row (one run: the value alone).",
        "Wall time is each run's own clock (the `timing` end line).",
    ]
    common = common_overrides(runs, keys)
    if common:
        lines.append("Common to all runs: " + " ".join(f"`{c}`" for c in common) + ".")
    lines += ["", "| " + " | ".join([*keys, "n", *[HEADINGS[m] for m in metrics]]) + " |"]
    lines.append("|" + "---|" * (len(keys) + 1 + len(metrics)))
    for row in rows:
        lines.append(
            "| "
            + " | ".join([*[str(row[k]) for k in keys], str(row["n"]), *[_cell(m, row[m]) for m in metrics]])
            + " |"
        )
    left_out = [r for r in runs if r.status != "done"]
    if left_out:
        lines += ["", "Not in the table:"]
        lines += [
            f"- `{r.name}`: " + (f"FAILED ({r.reason})" if r.status == "failed" else "unfinished (no DONE)")
            for r in left_out
        ]
    return "\n".join(lines) + "\n"


def runs_csv(runs: list[Run], keys: list[str]) -> str:
    """One row per run (failed and unfinished ones too): name, status, group keys, seed, the final
    test metrics and wall time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "status", *keys, "seed", *METRICS, SECONDS])
    for run in runs:
        test = run.test
        writer.writerow(
            [
                run.name,
                run.status,
                *[_text(run.setting(k)) for k in keys],
                _text(run.seed),
                *[_csv_number(test.get(m)) for m in METRICS],
                _csv_number(run.seconds),
            ]
        )
    return out.getvalue()
