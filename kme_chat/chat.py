"""The chat loop: history + question -> messages (system prompt, edited memory) -> streamed answer."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from langchain_core.runnables import Runnable, RunnableConfig

from . import prompts
from .model import LocalLLM, whole_answer
from .references import readings, refers_back
from .validation import clean_text

HISTORY_MESSAGES = 6  # a 135M model loses the thread on long histories; keep the last few turns
CONTRAST = 1.0        # context-aware decoding's alpha (Shi et al. 2023 use 0.5-1; 1 for knowledge conflicts)


@dataclass
class MemoryContext:
    """What memory adds to a chat, and which edits it came from: `turns` (stored facts as earlier
    exchanges) go before the conversation, `text` (facts, feedback, rules) right before the question;
    `contrast`: decode against the answer without memory."""
    text: str
    edit_ids: list[str] = field(default_factory=list)
    editor: str = ""
    turns: list[dict] = field(default_factory=list)
    contrast: bool = False
    claims: list = field(default_factory=list)  # editors.base.Claim: facts the decoder completes
    standing_ids: list[str] = field(default_factory=list)  # preferences: in every context, not about this question
    max_sentences: int | None = None  # a length preference the answer is cut to

    @classmethod
    def of(cls, found, editor: str) -> "MemoryContext":
        """From an editor's Context: its chat form when it has one (text and turns), else its text."""
        ids = list(found.edit_ids)
        return cls(found.chat_text or found.text, [] if found.standing else ids, editor, list(found.chat_turns),
                   found.contrast, list(found.claims), ids if found.standing else [], found.max_sentences)


# a sentence ends at . ! or ? followed by a space, unless the word is a short abbreviation ("Dr.", "e.g.")
SENTENCE_END = re.compile(r"(?<![A-Z][a-z])(?<!\b[A-Za-z])(?<!\be\.g)(?<!\bi\.e)[.!?]+[\"')\]]*\s+")


def first_sentences(text: str, limit: int) -> str | None:
    """The text cut after its `limit`-th finished sentence, or None when it has not finished that many."""
    ends = list(SENTENCE_END.finditer(text))
    return text[:ends[limit - 1].start()] + text[ends[limit - 1].start():ends[limit - 1].end()].rstrip() \
        if len(ends) >= limit else None


ContextProvider = Callable[[str], "MemoryContext | None"]
ChainProvider = Callable[[str], "str | None"]  # a question composing stored facts -> its answer, naming the chain


def content_text(content) -> str:
    """Message content as plain text: UIs send a string, or a list of parts like {"type": "text", "text": ...}."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(content_text(part) for part in content)
    return "" if content is None else str(content)


class ChatEngine:
    def __init__(self, llm: LocalLLM, context_for: ContextProvider | None = None,
                 chain_for: ChainProvider | None = None):
        self.llm = llm
        self.context_for = context_for or (lambda question: None)
        self.chain_for = chain_for or (lambda question: None)
        self.system_prompt = prompts.load("system.txt", llm.settings.prompts_dir).strip()
        self.contrast = CONTRAST

    def build(self, question: str, history: Sequence[dict] = ()) -> tuple[list[dict], MemoryContext | None]:
        question = clean_text(question, "message", self.llm.settings.max_message_chars)
        question, context, turns = self._resolved(question, history)
        return self._messages(question, turns, context), context

    def _resolved(self, question: str, history: Sequence[dict]) -> tuple[str, MemoryContext | None, list[dict]]:
        """The question as read (a follow-up resolved), the memory in its scope, and the earlier
        turns to show, with each text looked up in memory once."""
        lookup = self._lookup()
        question, context = self._read(question, history, lookup)
        return question, context, self._recent_turns(history, context, lookup)

    def _lookup(self) -> ContextProvider:
        """`context_for`, each text looked up once per answer: reading a follow-up and filtering the
        earlier turns ask about the same turns."""
        seen: dict[str, MemoryContext | None] = {}

        def lookup(text: str) -> MemoryContext | None:
            if text not in seen:
                seen[text] = self.context_for(text)
            return seen[text]
        return lookup

    def _read(self, question: str, history: Sequence[dict], lookup: ContextProvider) -> tuple[str, MemoryContext | None]:
        """The question and the memory in its scope. A question that refers back ("And who is its
        CEO?") and finds nothing is read with the reference resolved to what an earlier turn's stored
        fact was about; the model then gets that reading."""
        context = lookup(question)
        if (context is not None and context.edit_ids) or not history or not refers_back(question):
            return question, context
        earlier = [content_text(m.get("content")) for m in list(history)[-HISTORY_MESSAGES:] if m.get("role") == "user"]
        for turn in reversed(earlier):
            found = lookup(turn) if turn.strip() else None
            if found is None or not found.claims:
                continue
            for reading in readings(question, found.claims):
                if (resolved := lookup(reading)) is not None and resolved.edit_ids:
                    return reading, resolved
            break  # the latest turn about a stored fact is what "it" refers to
        return question, context

    def _messages(self, question: str, turns: list[dict], context: MemoryContext | None,
                  with_memory: bool = True) -> list[dict]:
        user_turn = question
        if with_memory and context is not None and context.text:
            user_turn = prompts.render("chat_with_memory.txt", self.llm.settings.prompts_dir,
                                       context=context.text, question=question).strip()
        # The system prompt is fixed text; nothing a user stores can reach it.
        messages = [{"role": "system", "content": self.system_prompt}]
        messages += context.turns if with_memory and context is not None else []
        messages += turns
        messages.append({"role": "user", "content": user_turn})
        return messages

    def _recent_turns(self, history: Sequence[dict], context: MemoryContext | None,
                      lookup: ContextProvider) -> list[dict]:
        """The last turns, less those about a fact the current context corrects: they were answered
        before the correction, and a small model would repeat the stale answer."""
        turns = [{"role": m.get("role"), "content": content_text(m.get("content"))}
                 for m in list(history)[-HISTORY_MESSAGES:] if m.get("role") in ("user", "assistant")]
        if context is None:
            return turns
        kept, skip_answer = [], False
        for turn in turns:
            if turn["role"] == "user":
                earlier = lookup(turn["content"]) if turn["content"].strip() else None
                skip_answer = bool(earlier and set(earlier.edit_ids) & set(context.edit_ids))  # standing ones aside
                if skip_answer:
                    continue
            elif skip_answer:
                skip_answer = False
                continue
            kept.append(turn)
        return kept

    def stream(self, question: str, history: Sequence[dict] = (), max_new_tokens: int | None = None) -> Iterator[str]:
        """The answer as it grows. A question that composes two or more stored facts is answered
        along them ("Lisbon — The CEO of Acme Robotics is Dana Whitfield. Dana Whitfield was born in
        Lisbon."). With stored facts in scope, decoding weighs the answer with the
        memory against the answer without it (context-aware decoding), so a corrected fact wins over
        what the model knew; every other question is decoded plainly, exactly as before any edit."""
        question = clean_text(question, "message", self.llm.settings.max_message_chars)
        chain = self.chain_for(question)
        if chain is not None:  # a question that composes stored facts: answered along them
            yield chain
            return
        question, context, turns = self._resolved(question, history)
        messages = self._messages(question, turns, context)
        if context is not None and context.contrast:
            plain = self._messages(question, turns, context, with_memory=False)
            answer = self.llm.stream_chat_contrast(messages, plain, self.contrast, max_new_tokens, claims=context.claims)
        else:
            answer = self.llm.stream_chat(messages, max_new_tokens)
        limit = context.max_sentences if context is not None else None
        for partial in answer:
            cut = first_sentences(partial, limit) if limit else None
            yield partial if cut is None else cut
            if cut is not None:  # a length preference: stop generating once the answer has enough
                answer.close()
                return

    def answer(self, question: str, history: Sequence[dict] = (), max_new_tokens: int | None = None) -> str:
        return whole_answer(self.stream(question, history, max_new_tokens))

    def as_runnable(self) -> "ChatRunnable":
        return ChatRunnable(self)


class ChatRunnable(Runnable):
    """LangChain view of the chat: input is a question, or {"question": ..., "history": [...]}."""

    def __init__(self, engine: ChatEngine):
        self.engine = engine

    @staticmethod
    def _unpack(value) -> tuple[str, list]:
        if isinstance(value, dict):
            return value.get("question", ""), list(value.get("history", []))
        return value, []

    def invoke(self, input, config: RunnableConfig | None = None, **kwargs) -> str:
        return self.engine.answer(*self._unpack(input))

    def stream(self, input, config: RunnableConfig | None = None, **kwargs) -> Iterator[str]:
        seen = ""
        for text in self.engine.stream(*self._unpack(input)):
            yield text[len(seen):]  # LangChain streams deltas
            seen = text
