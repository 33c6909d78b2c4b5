"""The fact memory's scope gate, swept: how many paraphrases reach their stored fact, how many
unrelated questions are kept away from every stored fact, and how many questions about the same
subject but another relation are kept away from it, for each pair of thresholds.

Embeddings only (no generation). Paraphrases and unrelated questions come from the conversation dev
set: every fact line is routed by the real router, all facts count as stored at once (as at the end
of a conversation run), and every stored fact is checked (the product checks only the 10 nearest:
this counts leaks as an upper bound). Same-subject questions come from MQuAKE (its single-hop
questions about subjects it asks two or more things about), written by MQuAKE's authors.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from editors.facts import FactMemory, names_subject
from editors.scope import without_names

from ..router import route_correction
from .conversations import _listed, load_conversations

THRESHOLDS = (0.0, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)  # questions compared, names masked
ALONE_THRESHOLDS = (0.8, 0.85, 0.9, 0.95, 1.01)  # 1.01: never without the subject's words


def _unit(vectors) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def same_subject_pairs(mquake_path: Path) -> list[tuple[dict, str, str]]:
    """(fact metadata, the fact's question, a question about the same subject's other relation)."""
    by_subject: dict[str, dict[str, str]] = {}
    for record in json.loads(Path(mquake_path).read_text(encoding="utf-8")):
        for hops, triples in (("single_hops", "triples_labeled"), ("new_single_hops", "new_triples_labeled")):
            for (subject, relation, _), hop in zip(record["orig"][triples], record[hops]):
                by_subject.setdefault(subject, {})[relation] = hop["question"]
    return [({"subject": subject}, asked, other)
            for subject, questions in by_subject.items()
            for asked, other in itertools.permutations(sorted(set(questions.values())), 2)]


def sweep(path: Path, embed, mquake_path: Path | None = None) -> dict:
    rows = [r for r in load_conversations(path) if r["kind"] == "fact"]
    facts = []  # (metadata, fact sentence, question, paraphrases)
    for row in rows:
        routed = route_correction(row["q"], "", row["c"])
        if routed.edit is not None and routed.edit.kind == "fact" and routed.method != "form":
            e = routed.edit
            facts.append(({"subject": e.subject, "aliases": "|".join(e.aliases)}, e.request().fact, row["q"],
                          _listed(row.get("para"))))

    def names(meta: dict) -> list[str]:
        return [meta["subject"], *[a for a in meta.get("aliases", "").split("|") if a]]

    def embed_unit(texts):
        return _unit(embed(list(texts))) if texts else np.zeros((0, 1), dtype=np.float32)

    def gates(meta: dict, fact_v, question: str, question_v, queries: list[str]):
        """Per query: (names the subject, cosine unmasked as FactMemory.relatedness, cosine names masked)."""
        query_v = embed_unit(queries)
        related = np.maximum(query_v @ fact_v, query_v @ question_v)
        asked = embed_unit([without_names(question, names(meta))])[0]
        masked = embed_unit([without_names(q, names(meta)) for q in queries]) @ asked
        return [(names_subject(q, meta), float(r), float(m)) for q, r, m in zip(queries, related, masked)]

    def admitted(gate, t, alone) -> bool:
        mentioned, related, masked = gate
        return related >= alone or (mentioned and related >= FactMemory.related_floor and masked >= t)

    fact_v, question_v = embed_unit([f[1] for f in facts]), embed_unit([f[2] for f in facts])
    others = sorted({o for r in rows for o in _listed(r.get("other"))})
    para_gates = [g for i, f in enumerate(facts) for g in gates(f[0], fact_v[i], f[2], question_v[i], f[3])]
    other_gates = [gates(f[0], fact_v[i], f[2], question_v[i], others) for i, f in enumerate(facts)]  # [fact][other]
    same = same_subject_pairs(mquake_path) if mquake_path else []
    same_gates = [gates(meta, embed_unit([asked])[0], asked, embed_unit([asked])[0], [other])[0]
                  for meta, asked, other in same]
    points = []
    for alone in ALONE_THRESHOLDS:
        for t in THRESHOLDS:
            reach = np.mean([admitted(g, t, alone) for g in para_gates])
            kept = np.mean([not any(admitted(per_fact[j], t, alone) for per_fact in other_gates)
                            for j in range(len(others))])
            same_kept = np.mean([not admitted(g, t, alone) for g in same_gates]) if same_gates else float("nan")
            points.append({"threshold": t, "alone_threshold": alone, "paraphrase_reach": float(reach),
                           "unrelated_kept": float(kept), "same_subject_kept": float(same_kept)})
    return {"data": str(path), "facts": len(facts), "paraphrases": len(para_gates), "unrelated": len(others),
            "same_subject_pairs": len(same), "same_subject_data": str(mquake_path or ""),
            "chosen": {"threshold": FactMemory.threshold, "alone_threshold": FactMemory.alone_threshold},
            "points": points}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    chosen = next(p for p in result["points"] if p["threshold"] == result["chosen"]["threshold"]
                  and p["alone_threshold"] == result["chosen"]["alone_threshold"])
    for ax, key, label in ((axes[0], "unrelated_kept", "unrelated questions kept from every stored fact"),
                           (axes[1], "same_subject_kept", "same subject, other relation: kept from the fact")):
        for alone in ALONE_THRESHOLDS:
            pts = [p for p in result["points"] if p["alone_threshold"] == alone]
            name = "never without the subject" if alone > 1 else f"without the subject: >= {alone}"
            ax.plot([p[key] for p in pts], [p["paraphrase_reach"] for p in pts], marker=".", label=name)
        ax.scatter([chosen[key]], [chosen["paraphrase_reach"]], s=120, facecolors="none", edgecolors="k",
                   label=f"chosen ({chosen['threshold']}, {chosen['alone_threshold']})")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("paraphrases that reach their fact")
    axes[0].legend(fontsize=7)
    fig.suptitle("Fact memory scope gate (threshold sweep; questions compared with names masked)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
