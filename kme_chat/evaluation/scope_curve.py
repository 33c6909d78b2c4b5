"""The fact memory's scope gate, swept: how many paraphrases reach their stored fact, and how many
unrelated questions are kept away from every stored fact, for each pair of thresholds.

Embeddings only (no generation), on the conversation dev set: every fact line is routed by the
real router, all facts count as stored at once (as at the end of a conversation run), and every
stored fact is checked (the product checks only the 10 nearest: this counts leaks as an upper bound).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from editors.facts import FactMemory, names_subject
from editors.scope import in_scope

from ..router import route_correction
from .conversations import _listed, load_conversations

THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9)
ALONE_THRESHOLDS = (0.8, 0.85, 0.9, 0.95, 1.01)  # 1.01: never without the subject's words


def _unit(vectors) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sweep(path: Path, embed) -> dict:
    rows = [r for r in load_conversations(path) if r["kind"] == "fact"]
    facts = []  # (subject, fact sentence, question, paraphrases)
    for row in rows:
        routed = route_correction(row["q"], "", row["c"])
        if routed.edit is not None and routed.edit.kind == "fact" and routed.method != "form":
            e = routed.edit
            facts.append(({"subject": e.subject, "aliases": "|".join(e.aliases)}, e.request().fact, row["q"],
                          _listed(row.get("para"))))
    others = sorted({o for r in rows for o in _listed(r.get("other"))})
    paras = [(i, p) for i, f in enumerate(facts) for p in f[3]]
    fact_v, question_v = _unit(embed([f[1] for f in facts])), _unit(embed([f[2] for f in facts]))
    para_v, other_v = _unit(embed([p for _, p in paras])), _unit(embed(others))
    # relatedness = max(cosine to the fact, cosine to its question), as FactMemory.relatedness
    para_rel = np.maximum((para_v * fact_v[[i for i, _ in paras]]).sum(1), (para_v * question_v[[i for i, _ in paras]]).sum(1))
    para_mention = [names_subject(p, facts[i][0]) for i, p in paras]
    other_rel = np.maximum(other_v @ fact_v.T, other_v @ question_v.T)
    other_mention = [[names_subject(o, f[0]) for f in facts] for o in others]
    points = []
    for alone in ALONE_THRESHOLDS:
        for t in THRESHOLDS:
            reach = np.mean([in_scope(m, r, t, alone) for m, r in zip(para_mention, para_rel)])
            kept = np.mean([not any(in_scope(m, r, t, alone) for m, r in zip(ms, rels))
                            for ms, rels in zip(other_mention, other_rel)])
            points.append({"threshold": t, "alone_threshold": alone, "paraphrase_reach": float(reach),
                           "unrelated_kept": float(kept)})
    return {"data": str(path), "facts": len(facts), "paraphrases": len(paras), "unrelated": len(others),
            "chosen": {"threshold": FactMemory.threshold, "alone_threshold": FactMemory.alone_threshold},
            "points": points}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for alone in ALONE_THRESHOLDS:
        pts = [p for p in result["points"] if p["alone_threshold"] == alone]
        label = "never without the subject" if alone > 1 else f"without the subject: >= {alone}"
        ax.plot([p["unrelated_kept"] for p in pts], [p["paraphrase_reach"] for p in pts], marker=".", label=label)
    chosen = next(p for p in result["points"] if p["threshold"] == result["chosen"]["threshold"]
                  and p["alone_threshold"] == result["chosen"]["alone_threshold"])
    ax.scatter([chosen["unrelated_kept"]], [chosen["paraphrase_reach"]], s=120, facecolors="none", edgecolors="k",
               label=f"chosen ({chosen['threshold']}, {chosen['alone_threshold']})")
    ax.set_xlabel("unrelated questions kept from every stored fact")
    ax.set_ylabel("paraphrases that reach their fact")
    ax.set_title("Fact memory scope gate (threshold sweep)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
