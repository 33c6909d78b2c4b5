"""The metric code on hand-made cases whose answers are known, with a scorer whose scores are fixed."""
from editors.base import Context, EditRequest
from kme_chat.datasets import EditCase
from kme_chat.evaluate import evaluate_edits, matches


class FixedScorer:
    """Log-probs come from a table keyed by (prompt, target); an edit flips what its table says."""

    def __init__(self):
        self.table = {}
        self.argmax = {}
        self.completions = {}

    def logprob(self, prompts, targets):
        return [self.table.get((p, t), -10.0) for p, t in zip(prompts, targets)]

    def teacher_forced_argmax(self, prompts, targets):
        return [self.argmax.get(p, [1, 2]) for p in prompts]

    def complete(self, prompt, max_new_tokens=8):
        return self.completions.get(prompt, " nothing")


class TableEditor:
    """Applying an edit writes the scores the 'edited model' would give; revert removes them."""
    name = "table"
    changes_weights = True

    def __init__(self, scorer, effects, broken_by=None):
        self.scorer, self.effects, self.broken_by = scorer, effects, broken_by or {}
        self.active = []

    def apply(self, edits):
        for e in edits:
            self.active.append(e.id)
            self.scorer.table.update(self.effects[e.id])
            for prompt in self.broken_by.get(e.id, []):
                self.scorer.argmax[prompt] = [9, 9]

    def revert(self, edits):
        for e in edits:
            self.active.remove(e.id)
            for key in self.effects[e.id]:
                self.scorer.table.pop(key, None)
            for prompt in self.broken_by.get(e.id, []):
                self.scorer.argmax.pop(prompt, None)

    def context_for(self, query):
        return None

    def describe(self, edit):
        return ""


def case(i, para=True):
    req = EditRequest(id=f"e{i}", subject=f"S{i}", prompt=f"S{i} lives in", target_new="Rome",
                      target_true="Paris", paraphrases=[f"S{i} resides in"] if para else [])
    return EditCase(req, neighbourhood=[(f"N{i} lives in", "Oslo")])


def test_single_mode_counts_success_paraphrase_and_locality():
    scorer = FixedScorer()
    cases = [case(0), case(1)]
    effects = {
        "e0": {("S0 lives in", "Rome"): -1.0, ("S0 resides in", "Rome"): -1.0},      # full success
        "e1": {("S1 lives in", "Rome"): -1.0, ("S1 resides in", "Paris"): -0.5},     # paraphrase fails
    }
    editor = TableEditor(scorer, effects, broken_by={"e1": ["N1 lives in"]})        # e1 breaks its neighbour
    scorer.completions["S0 lives in"] = " Rome, Italy"
    result = evaluate_edits(scorer, editor, cases, "single")
    m = result["metrics"]
    assert m["efficacy"] == 1.0
    assert m["efficacy_em"] == 0.5  # e0 continues " Rome, Italy"; e1 continues " nothing"
    assert m["generality"] == 0.5
    assert m["locality"] == 0.5
    assert result["timings"]["edit_count"] == 2
    assert editor.active == []  # single mode reverts every edit


def test_sequential_retainability_drops_when_later_edits_overwrite_earlier():
    scorer = FixedScorer()
    cases = [case(0, para=False), case(1, para=False), case(2, para=False)]
    effects = {
        "e0": {("S0 lives in", "Rome"): -1.0},
        "e1": {("S1 lives in", "Rome"): -1.0, ("S0 lives in", "Rome"): -20.0},  # e1 undoes e0
        "e2": {("S2 lives in", "Rome"): -1.0},
    }
    result = evaluate_edits(scorer, TableEditor(scorer, effects), cases, "sequential")
    m = result["metrics"]
    assert m["efficacy"] == 2 / 3
    assert m["retainability"] == 0.5  # of edits 1..K-1, only e1 still holds


def test_batch_mode_reports_scalability_relative_to_single():
    scorer = FixedScorer()
    cases = [case(0, para=False), case(1, para=False)]
    effects = {"e0": {("S0 lives in", "Rome"): -1.0},
               "e1": {("S1 lives in", "Rome"): -1.0, ("S0 lives in", "Rome"): -30.0}}
    m = evaluate_edits(scorer, TableEditor(scorer, effects), cases, "batch")["metrics"]
    assert m["efficacy_single"] == 1.0
    assert m["scalability"] == 0.5 and m["scalability_rel"] == 0.5


def test_context_is_put_before_the_prompt():
    assert Context("New Fact: x\nPrompt:", ["a"], separator=" ").before("Q") == "New Fact: x\nPrompt: Q"


def test_answer_matching_uses_whole_words():
    assert matches("The answer is the United Kingdom.", ["United Kingdom"])
    assert not matches("Romeo and Juliet", ["Rome"])
