"""What a multi-hop reader returns: the final answer and the chain of hops that led to it, so the
app can show sub-questions, retrieved facts and where each intermediate answer came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

# complete(prompt, max_new_tokens, stop strings) -> continuation; the model behind it is the caller's.
Complete = Callable[[str, int, Sequence[str]], str]


@dataclass
class Hop:
    question: str           # the sub-question (or the relation asked of an entity)
    answer: str             # the intermediate answer carried to the next hop
    fact: str = ""          # the stored fact used, if any
    edit_id: str = ""
    generated: str = ""     # what the model said before seeing the fact (MeLLo)
    source: str = "memory"  # "memory": a stored fact decided; "model": the model's own answer


@dataclass
class MultiHopAnswer:
    question: str
    answer: str
    hops: list[Hop] = field(default_factory=list)
    method: str = ""
    used_memory: bool = False

