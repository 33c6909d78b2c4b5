"""The one small interface every editor implements, and the edit request they all take.

Editors do not know about the app, the edit log or the chat: they get an `EditRequest`,
change something (a memory, or weights), and can undo it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable


@dataclass
class EditRequest:
    """e = (subject s, relation r, old object o -> new object o*), with the prompts it came from."""
    id: str
    subject: str
    prompt: str                 # text that mentions the subject and ends where o* follows
    target_new: str
    target_true: str = ""
    relation: str = ""          # e.g. "The capital of {} is"; defaults to prompt with subject blanked
    paraphrases: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # other names of the subject ("Iacolino")
    question: str = ""          # the chat question the edit came from, if any
    note: str = ""              # free text: MemPrompt feedback, or a Language Patch consequence
    condition: str = ""         # Language Patch: when the patch applies
    owner: str = ""             # whose memory holds it (SHARED: everyone's); weight edits have no owner

    @property
    def fact(self) -> str:
        """The new fact as one sentence, e.g. 'The capital of Italy is Rome.'"""
        return f"{self.prompt.rstrip()} {self.target_new.strip()}".rstrip(".") + "."

    @property
    def relation_template(self) -> str:
        return self.relation or self.prompt.replace(self.subject, "{}", 1)


SHARED = "*"  # the owner of a memory entry every user sees


@dataclass
class Claim:
    """A stored fact as the chat decoder uses it: once the answer states `prefix` ("The capital of
    Italy is"), the fact's `object` follows. `lead`: the query asks nearly the fact's own question,
    so the answer opens with the prefix."""
    prefix: str
    object: str
    lead: bool = False
    subject: str = ""   # as the fact names it, for a later question that refers back ("its CEO")


@dataclass
class Context:
    """What a memory editor puts before a query, and the edits behind it.

    `text` goes before a completion prompt (evaluation); `chat_text`, when set, is the shorter
    form an instruction-tuned model gets in front of a chat question.
    """
    text: str
    edit_ids: list[str]
    score: float = 0.0
    chat_text: str = ""
    separator: str = "\n"      # between `text` and the completion prompt
    # a chat model gets stored facts as an earlier exchange (the user's question, the fact as the
    # answer): it then answers in its own words, with no template text to repeat
    chat_turns: list[dict] = field(default_factory=list)
    contrast: bool = False     # decode against the no-memory answer (facts a user gave in the chat)
    claims: list[Claim] = field(default_factory=list)  # facts the decoder completes from memory
    standing: bool = False     # holds for every question (a preference), not because of this one
    max_sentences: int | None = None  # answers stop after this many sentences (a length preference)

    def before(self, prompt: str) -> str:
        return f"{self.text}{self.separator}{prompt}"


@runtime_checkable
class Editor(Protocol):
    name: str
    changes_weights: bool

    def apply(self, edits: Sequence[EditRequest]) -> None:
        """Make the edits hold. A list is applied as one batch where the method supports it."""

    def revert(self, edits: Sequence[EditRequest]) -> None:
        """Undo exactly what apply did for these edits."""

    def context_for(self, query: str) -> Context | None:
        """Text to put before the query, or None when the query is outside every edit's scope."""

    def describe(self, edit: EditRequest) -> str:
        """One line for the edit history: what this editor stored or changed."""


class NoEdit:
    """The unedited model (`--method none`): the baseline every editor is measured against."""
    name = "none"
    changes_weights = False

    def apply(self, edits): pass
    def revert(self, edits): pass
    def context_for(self, query): return None
    def describe(self, edit): return "no change"


class MemoryStore(Protocol):
    """A vector store of text entries, each linked to an edit id (Chroma in kme_chat.memory)."""

    def add(self, collection: str, ids: Sequence[str], texts: Sequence[str], metadatas: Sequence[dict]) -> None: ...

    def query(self, collection: str, text: str, k: int, where: dict | None = None) -> list["Hit"]: ...

    def delete_edit(self, collection: str, edit_id: str) -> None: ...

    def delete_all(self, collection: str) -> None: ...

    def count(self, collection: str) -> int: ...

    def embed(self, texts: Sequence[str]) -> list: ...


@dataclass
class Hit:
    id: str
    text: str
    metadata: dict
    similarity: float  # cosine similarity in [-1, 1]
