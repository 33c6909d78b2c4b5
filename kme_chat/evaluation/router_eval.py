"""Router accuracy on a labelled set of corrections (JSON lines: q, c, route, s, r, o, cond, then)."""
from __future__ import annotations

import json
from pathlib import Path

from ..router import KIND_OF_ROUTE, route_correction


def predicted_route(routed) -> str:
    if not routed.route:
        return "none"
    return KIND_OF_ROUTE[routed.route[0]]


def router_accuracy(path: str | Path) -> dict:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    route_ok, exact_ok, exact_total, misses = 0, 0, 0, []
    for row in rows:
        routed = route_correction(row["q"], "", row["c"])
        got = predicted_route(routed)
        route_ok += got == row["route"]
        if row["route"] in ("fact", "rule"):
            exact_total += 1
            e = routed.edit
            if row["route"] == "fact":
                want = (row["s"], row["r"], row["o"])
                have = (e.subject, e.relation, e.target_new) if e and routed.method != "form" else None
            else:
                want = (row["cond"], row["then"])
                have = (e.condition, e.note) if e else None
            same = have is not None and tuple(x.lower() for x in have) == tuple(x.lower() for x in want)
            exact_ok += same
            if not same:
                misses.append({"correction": row["c"], "want": want, "got": have})
        if got != row["route"]:
            misses.append({"correction": row["c"], "want_route": row["route"], "got_route": got})
    return {"n": len(rows), "route_accuracy": route_ok / len(rows),
            "exact_accuracy": exact_ok / exact_total if exact_total else None, "exact_n": exact_total,
            "misses": misses}
