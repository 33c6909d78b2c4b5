"""The assistant: the model, the chat, and (later) the edit log, memory and editors, wired once."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

from .chat import ChatEngine, MemoryContext
from .config import Settings
from .model import LocalLLM


def answer_with(llm: LocalLLM, editor, max_new_tokens: int = 32) -> Callable[[str], str]:
    """A question-answering function through the chat path, with `editor`'s memory in context."""
    def context(question: str):
        found = editor.context_for(question)
        return MemoryContext(found.text, found.edit_ids, editor.name) if found else None

    engine = ChatEngine(llm, context)

    def answer(question: str) -> str:
        messages, _ = engine.build(question)
        return llm.chat(messages, max_new_tokens=max_new_tokens)
    return answer


class Assistant:
    def __init__(self, settings: Settings, llm: LocalLLM):
        self.settings = settings
        self.llm = llm
        self.engine = ChatEngine(llm, self.context_for)

    @classmethod
    def open(cls, settings: Settings) -> "Assistant":
        return cls(settings, LocalLLM.load(settings))

    def context_for(self, question: str) -> MemoryContext | None:
        return None

    def stream(self, question: str, history: Sequence[dict] = ()) -> Iterator[str]:
        return self.engine.stream(question, history)
