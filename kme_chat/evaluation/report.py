"""`kme-chat report`: every method on fixed subsets sized for a 2-core CPU, one results file per
run in bench/results/, then report.md, report.json and a plot of efficacy and locality as
sequential edits pile up.

A run whose results file exists is reused (the whole plan takes hours here; an interrupted
report picks up where it stopped); `--fresh` runs everything again. Subsets are the first N
records of each shared file, decoding is greedy and ROME's prefixes are seeded, so a rerun
measures the same thing.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import REPO_ROOT, Settings
from ..errors import UserError

RESULTS = REPO_ROOT / "bench" / "results"
DATA_FILES = {"counterfact": "counterfact-edit.json", "zsre": "zsre_mend_train-1k.json", "mquake": "MQuAKE-hard.json"}


@dataclass
class Run:
    method: str
    format: str
    limit: int
    mode: str = "single"                 # counterfact/zsre: single | sequential | batch
    checkpoints: list[int] = field(default_factory=list)  # sequential: the curve's edit counts
    sample: int | None = None            # sequential: edits measured per checkpoint; batch: single edits for Sca_rel
    group: int = 1                       # mquake: cases whose edits are stored together; sequential: edits per step
    questions: int | None = None         # mquake: questions asked per case (None = all)
    single_hops: bool = True             # mquake: also ask the edited facts one by one
    locality: int = 0                    # mquake: unrelated questions asked as probes
    offset: int = 0                      # first record used
    hparams: dict = field(default_factory=dict)  # weight editors: hyperparameters changed from the defaults


    @property
    def name(self) -> str:
        at = f"@{self.offset}" if self.offset else ""
        if self.format == "mquake":
            return f"mquake-{self.limit}{at}-{self.method}-g{self.group}"
        per = f"-b{self.group}" if self.mode == "sequential" and self.group > 1 else ""
        changed = "".join(f"-{k}{_value_text(v)}" for k, v in sorted(self.hparams.items()))
        return f"{self.format}-{self.limit}{at}-{self.method}-{self.mode}{per}{changed}"


def _value_text(value) -> str:
    """A hyperparameter's value in run names and labels: 2000.0 -> "2000"."""
    return f"{value:g}" if isinstance(value, float) else str(value)


MQUAKE = dict(format="mquake", limit=100, questions=1, single_hops=False, locality=20)
PLAN = [
    # CounterFact: the memory editors with all 200 edits stored, then measured
    Run("ike", "counterfact", 200, "sequential"),
    Run("memprompt", "counterfact", 200, "sequential"),
    Run("language_patch", "counterfact", 200, "sequential"),
    # weight editors: one at a time (each undone), one after another, and all in one batch
    Run("rome", "counterfact", 100, "single"),
    Run("rome", "counterfact", 100, "sequential", checkpoints=[1, 10, 25, 50], sample=25),
    Run("memit", "counterfact", 100, "batch", sample=25),
    # the curve of efficacy and locality up to 500 sequential edits
    Run("ike", "counterfact", 500, "sequential", checkpoints=[1, 10, 50, 100, 250], sample=25),
    # MQuAKE-hard, first question of each case; each case's 4 edits stored alone (g1) or 100 cases together
    Run("none", **MQUAKE),
    Run("mello", **MQUAKE),
    Run("fact_chain", **{**MQUAKE, "single_hops": True}),
    Run("fact_chain", **{**MQUAKE, "single_hops": True, "offset": 100}),  # cases never looked at while building it
    Run("fact_chain", **{**MQUAKE, "single_hops": True, "group": 100}),
    Run("rome", **MQUAKE),
    Run("memit", **{**MQUAKE, "limit": 20, "locality": 10}),  # ~1 min per case here: 4 value steps
]


# Lifelong weight editing (issue 16): 1 000 CounterFact edits one after another, measured as they
# pile up, on records #7000-7999, which no tuning run used (README lists the offsets used). AlphaEdit
# in batches measures every edit made; the others a sample of 100 per checkpoint (CPU time).
LIFELONG_AT = dict(format="counterfact", limit=1000, mode="sequential", offset=7000)
LIFELONG = [
    Run("alphaedit", **LIFELONG_AT, group=100, checkpoints=[100, 250, 500], sample=None),  # all 1 000 measured
    Run("memit", **LIFELONG_AT, group=100, checkpoints=[100, 250, 500], sample=100),
    Run("rome", **LIFELONG_AT, checkpoints=[1, 10, 100, 250, 500], sample=100),
    Run("alphaedit", **LIFELONG_AT, checkpoints=[1, 10, 100, 200, 500], sample=100),
    # AlphaEdit with MEMIT's soft λC inside the solve: tried after the runs above (README)
    Run("alphaedit", **LIFELONG_AT, group=100, checkpoints=[100, 250, 500], sample=100,
        hparams={"c_weight": 2000.0}),
]
# The check of that variant on records no run above looked at (#8000-8999): default against soft C;
# then the key gate (τ chosen on #6000-6099, README), with every edit measured as issue 16's bars ask
LIFELONG_CHECK_AT = {**LIFELONG_AT, "offset": 8000}
LIFELONG_CHECK = [
    Run("alphaedit", **LIFELONG_CHECK_AT, group=100, checkpoints=[100, 300, 500], sample=100),
    Run("alphaedit", **LIFELONG_CHECK_AT, group=100, checkpoints=[100, 300, 500], sample=100,
        hparams={"c_weight": 2000.0}),
    Run("alphaedit", **{**LIFELONG_CHECK_AT, "limit": 300}, group=100, checkpoints=[100], sample=100,
        hparams={"gate": 0.5}),  # the run that fitted in the session (README)
    Run("alphaedit", **LIFELONG_CHECK_AT, group=100, checkpoints=[100, 500], sample=None,
        hparams={"gate": 0.5}),
    Run("alphaedit", **{**LIFELONG_CHECK_AT, "limit": 200}, checkpoints=[10, 100], sample=None,
        hparams={"gate": 0.5}),
    # the 1 000-edit run again with the value step in float32, what "auto" takes on a CPU without
    # native bfloat16 (README: the value step's dtype follows the CPU)
    Run("alphaedit", **LIFELONG_CHECK_AT, group=100, checkpoints=[100, 500], sample=None,
        hparams={"gate": 0.5, "value_dtype": "float32"}),
]
PLANS = {"main": PLAN, "lifelong": LIFELONG, "lifelong_check": LIFELONG_CHECK}


def progress(stage: str, done: int, total: int) -> None:
    print(f"\r{stage}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def run_one(run: Run, llm, settings: Settings, data_file: Path | None = None, partial=None) -> dict:
    """Builds the method, measures it on its subset and returns the result record. `partial` is
    told a sequential run's curve points and measured rows as they come (hours of CPU on 1 000 edits)."""
    from ..assistant import answer_with
    from .datasets import load_cases
    from .metrics import evaluate_edits, evaluate_multihop, multihop_answerer
    from ..methods import build_editor
    from .bench import machine_description

    machine = machine_description()  # read first: a label must not cost an hours-long run its result
    data_file = data_file or Path(settings.shared_data) / DATA_FILES[run.format]
    cases = load_cases(data_file, run.format, run.limit, run.offset)
    editor = build_editor(run.method, llm)
    for key, value in run.hparams.items():
        setattr(editor.hp, key, value)
    start = time.perf_counter()
    if run.format == "mquake":
        result = evaluate_multihop(cases, editor, multihop_answerer(editor, answer_with(llm, editor)), progress,
                                   run.group, run.questions, run.single_hops, run.locality)
    else:
        result = evaluate_edits(llm, editor, cases, run.mode, progress, run.checkpoints, run.sample, run.group,
                                partial)
    return {"run": asdict(run), "method": run.method, "format": run.format, "mode": run.mode, "n": len(cases),
            "data": str(data_file), "machine": machine,
            "seconds": time.perf_counter() - start, **result}


def save(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)  # a crash mid-write leaves the old file, never half a file


# ---- the report ---------------------------------------------------------------------------
EDIT_COLUMNS = [("efficacy", "efficacy"), ("efficacy_em", "efficacy (EM)"), ("generality", "generality"),
                ("locality", "locality"), ("retainability", "retain."), ("scalability", "Sca"),
                ("scalability_rel", "Sca_rel")]
MULTIHOP_COLUMNS = [("multihop", "multi-hop"), ("multihop_original", "multi-hop (old answer)"),
                    ("single_hop", "single-hop"), ("multihop_locality", "multi-hop locality"),
                    ("path_followed", "path followed")]


def _cell(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def table(results: list[dict], columns: list[tuple[str, str]]) -> str:
    head = ["method", "data", "n"] + [label for _, label in columns] + ["s/edit", "s/query"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        m, t, run = r["metrics"], r["timings"], r.get("run", {})
        data = r["format"] + (f" g{run.get('group', 1)}" if r["format"] == "mquake" else f" {r['mode']}")
        data += f" from #{run['offset']}" if run.get("offset") else ""
        cells = [r["method"], data, str(r["n"])] + [_cell(m.get(k)) for k, _ in columns]
        cells += [_cell(t.get("edit_mean_s")), _cell(t.get("query_mean_s"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def method_label(r: dict) -> str:
    """The method, with any hyperparameters its run changed (e.g. "alphaedit c_weight=2000")."""
    changed = r.get("run", {}).get("hparams") or {}
    return " ".join([r["method"]] + [f"{k}={_value_text(v)}" for k, v in changed.items()])


def plot_curves(results: list[dict], path: Path, keys=("efficacy", "locality")) -> bool:
    curves = [r for r in results if r.get("curve") and len(r["curve"]) > 1]
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), sharex=True)
    for r in curves:
        xs = [p["edits"] for p in r["curve"]]
        group = r.get("run", {}).get("group", 1)
        label = f"{method_label(r)} ({r['n']} edits{f', batches of {group}' if group > 1 else ', one at a time'})"
        for ax, key in zip(axes, keys):
            ax.plot(xs, [p.get(key) for p in r["curve"]], marker="o", label=label)
    for ax, key in zip(axes, keys):
        ax.set_xscale("log")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("sequential edits made")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower left")
    fig.suptitle(f"CounterFact: {' and '.join(keys)} as edits pile up (SmolLM2-135M, CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(results: list[dict], folder: Path = RESULTS) -> Path:
    plotted = plot_curves(results, folder / "sequential_curve.png")
    summary = [{k: r[k] for k in ("run", "method", "format", "mode", "n", "metrics", "timings") if k in r}
               | ({"curve": r["curve"]} if r.get("curve") else {}) for r in results]
    save(summary, folder / "report.json")
    body = ["# kme-chat evaluation report", "",
            "Metrics as defined in Wang et al. 2023 (§4): efficacy P(new) > P(old) on the edit prompt; generality the",
            "same on its paraphrase; locality unchanged predictions on a neighbourhood prompt; retainability",
            "efficacy of earlier edits after later ones; Sca / Sca_rel batch efficacy and its ratio to single",
            "edits; multi-hop the share of MQuAKE-hard cases where a multi-hop question yields the new answer;",
            "multi-hop locality the share of unrelated multi-hop questions whose answer is unchanged by the edits.",
            "", table([r for r in results if r["format"] != "mquake"], EDIT_COLUMNS), "",
            table([r for r in results if r["format"] == "mquake"], MULTIHOP_COLUMNS), ""]
    if plotted:
        body += ["![efficacy and locality vs sequential edits](sequential_curve.png)", ""]
    path = folder / "report.md"
    path.write_text("\n".join(body))
    return path


def curve_table(results: list[dict]) -> str:
    """One row per run and measured point: edits made, then efficacy / generality / locality."""
    lines = ["| method | batch | edits made | measured | efficacy | generality | locality | s/edit |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        group = r.get("run", {}).get("group", 1)
        for p in r.get("curve", []):
            lines.append(f"| {method_label(r)} | {group} | {p['edits']} | {p['measured']} | {_cell(p.get('efficacy'))} | "
                         f"{_cell(p.get('generality'))} | {_cell(p.get('locality'))} | "
                         f"{_cell(r['timings'].get('edit_mean_s') / group)} |")
    return "\n".join(lines)


def write_lifelong(results: list[dict], folder: Path = RESULTS, name: str = "lifelong") -> Path:
    plot_curves(results, folder / f"{name}_curve.png", keys=("efficacy", "generality", "locality"))
    first = min(r["run"].get("offset", 0) for r in results)
    last = max(r["run"].get("offset", 0) + r["n"] - 1 for r in results)
    body = ["# Lifelong weight editing: CounterFact edits one after another", "",
            f"Records #{first}-#{last}, which no tuning run used. At each point the edits made so far are measured (a sample spread over them where `measured` is "
            "smaller); s/edit is the wall time of all edits over their number.", "",
            curve_table(results), "", f"![efficacy, generality and locality vs sequential edits]({name}_curve.png)", ""]
    path = folder / f"{name}.md"
    path.write_text("\n".join(body))
    return path


def run_report(settings: Settings, fresh: bool = False, only: list[str] | None = None,
               folder: Path = RESULTS, plan: str = "main") -> Path:
    """Runs the plan's missing results (or, with `only`, just those runs), then writes the report
    from every result file of the plan that exists."""
    if plan not in PLANS:
        raise UserError(f"unknown plan {plan!r}; choose one of {', '.join(PLANS)}")
    runs = PLANS[plan]
    chosen = [r for r in runs if not only or r.name in only or r.method in only]
    if only and not chosen:
        raise UserError(f"nothing in the plan matches {only}; runs are: {', '.join(r.name for r in runs)}")
    llm = None
    for i, run in enumerate(chosen, 1):
        path = folder / f"{run.name}.json"
        if path.is_file() and not fresh:
            print(f"[{i}/{len(chosen)}] {run.name}: reusing {path.name}", file=sys.stderr)
            continue
        print(f"[{i}/{len(chosen)}] {run.name}: running", file=sys.stderr)
        if llm is None:
            from ..model import LocalLLM

            # scored on the float model; the plans measure the weight editors as published (written into
            # the weights) unless a run names the key gate in its hparams
            llm = LocalLLM.load(settings.with_overrides(keep_float=True, weight_gate=0.0))
        partial_path = folder / f"{run.name}.partial.json"  # what a stopped run had measured
        save(run_one(run, llm, settings, partial=lambda state: save({"run": asdict(run), **state}, partial_path)), path)
        partial_path.unlink(missing_ok=True)
    results = [json.loads((folder / f"{r.name}.json").read_text()) for r in runs if (folder / f"{r.name}.json").is_file()]
    return write_lifelong(results, folder, plan) if plan.startswith("lifelong") else write_report(results, folder)
