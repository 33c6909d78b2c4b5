"""Fills the README's result placeholders from bench/results/*.json (run after `make bench`)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RES = ROOT / "bench" / "results"


def load(name):
    path = RES / name
    return json.loads(path.read_text()) if path.is_file() else None


def fmt(v):
    return "—" if v is None else f"{v:.3f}"


def results_table():
    rows = ["| method | records | efficacy | efficacy (EM) | generality | locality | retainability | s/edit | s/query p95 |",
            "|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(RES.glob("counterfact-*.json")):
        r = json.loads(path.read_text())
        m, t = r["metrics"], r["timings"]
        rows.append(f"| {r['method']} | {r['n']} ({r['mode']}) | {fmt(m.get('efficacy'))} | {fmt(m.get('efficacy_em'))} | "
                    f"{fmt(m.get('generality'))} | {fmt(m.get('locality'))} | {fmt(m.get('retainability'))} | "
                    f"{t['edit_mean_s']:.3f} | {t['query_p95_s']:.2f} |")
    return "\n".join(rows)


def foundation_table():
    f = load("foundation.json")
    if not f:
        return "(not measured yet: run `make bench`)"
    rows = ["| quantisation | load s | first token s | tokens/s | RSS MB | answer |", "|---|---|---|---|---|---|"]
    for r in f["rows"]:
        if "error" in r:
            rows.append(f"| {r['quantisation']} | error | | | | {r['error'][:60]} |")
        else:
            rows.append(f"| {r['quantisation']} | {r['load_s']} | {r['first_token_s']} | {r['tokens_per_s']} | "
                        f"{r['rss_mb']:.0f} | {r['answer'][:50]} |")
    return "\n".join(rows) + f"\n\n{f['note']}."


def main():
    readme = (ROOT / "README.md").read_text()
    router = load("router.json")
    retrieval = load("retrieval.json")
    readme = readme.replace("RESULTS_TABLE", results_table()).replace("FOUNDATION_TABLE", foundation_table())
    readme = readme.replace("ROUTER_LINE", f"route accuracy **{router['route_accuracy']:.1%}**, exact (s, r, o*) "
                            f"**{router['exact_accuracy']:.1%}** of {router['exact_n']} facts and rules." if router else "—")
    readme = readme.replace("RETRIEVAL_LINE", f"mean **{retrieval['query_mean_ms']} ms**, p95 **{retrieval['query_p95_ms']} ms** "
                            f"over {retrieval['queries']} queries (goal ≤ 20 ms p95)." if retrieval else "—")
    (ROOT / "README.md").write_text(readme)


if __name__ == "__main__":
    sys.exit(main())
