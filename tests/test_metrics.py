"""The metric code on hand-made cases whose answers are known, with a scorer whose scores are fixed."""
from editors.base import Context, EditRequest
from kme_chat.evaluation.datasets import EditCase
from kme_chat.evaluation.metrics import evaluate_edits, matches


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
    assert m["single_measured"] == 2
    sampled = evaluate_edits(scorer, TableEditor(scorer, effects), cases, "batch", sample=1)["metrics"]
    assert sampled["single_measured"] == 1 and sampled["scalability"] == 0.5  # the batch itself is whole


def test_context_is_put_before_the_prompt():
    assert Context("New Fact: x\nPrompt:", ["a"], separator=" ").before("Q") == "New Fact: x\nPrompt: Q"


def test_answer_matching_uses_whole_words():
    assert matches("The answer is the United Kingdom.", ["United Kingdom"])
    assert not matches("Romeo and Juliet", ["Rome"])


def test_sequential_curve_measures_each_checkpoint_on_the_edits_made_so_far():
    scorer = FixedScorer()
    cases = [case(i, para=False) for i in range(4)]
    effects = {f"e{i}": {(f"S{i} lives in", "Rome"): -1.0} for i in range(4)}
    effects["e3"][("S0 lives in", "Rome")] = -20.0  # the fourth edit breaks the first
    result = evaluate_edits(scorer, TableEditor(scorer, effects, broken_by={"e1": ["N0 lives in"]}), cases,
                            "sequential", checkpoints=[1, 2, 3])
    curve = {p["edits"]: p for p in result["curve"]}
    assert sorted(curve) == [1, 2, 3, 4]
    assert curve[1]["efficacy"] == 1.0 and curve[1]["locality"] == 1.0
    assert curve[2]["locality"] == 0.5          # e1 changed e0's neighbour
    assert curve[4]["efficacy"] == 0.75 and curve[4]["measured"] == 4


def test_multihop_groups_share_memory_and_probe_unrelated_questions():
    from kme_chat.evaluation.datasets import MultiHopCase
    from kme_chat.evaluation.metrics import evaluate_multihop

    def mh(i):
        edit = case(i, para=False)
        return MultiHopCase(str(i), [edit], [f"Where does the friend of S{i} live?"], "Paris", [], "Rome", [],
                            [(f"Where does S{i} live?", ["Rome"])])

    stored = set()

    class Memory:
        name, changes_weights = "memory", False
        def apply(self, edits): stored.update(e.subject for e in edits)
        def revert(self, edits): stored.difference_update(e.subject for e in edits)

    def answer(question):  # knows the edit only while it is stored; S2's question drifts when S0 is stored
        subject = next(w for w in question.split() if w[0] == "S" and w[1:].isdigit())
        if subject in stored:
            return "Rome"
        return "Oslo" if subject == "S2" and "S0" in stored else "Paris"

    cases = [mh(0), mh(1), mh(2)]
    result = evaluate_multihop(cases, Memory(), answer, group=2, locality=1)
    m = result["metrics"]
    assert m["multihop"] == 1.0 and m["single_hop"] == 1.0 and m["multihop_original"] == 0.0
    assert result["settings"]["locality_probes"] == 1 and m["multihop_locality"] == 0.0  # S2's probe drifted


def test_sequential_batches_apply_edits_a_batch_at_a_time():
    scorer = FixedScorer()
    cases = [case(i, para=False) for i in range(5)]
    effects = {f"e{i}": {(f"S{i} lives in", "Rome"): -1.0} for i in range(5)}
    editor = TableEditor(scorer, effects)
    calls = []
    apply = editor.apply
    editor.apply = lambda edits: (calls.append([e.id for e in edits]), apply(edits))[1]
    result = evaluate_edits(scorer, editor, cases, "sequential", checkpoints=[2, 3], batch=2)
    assert calls == [["e0", "e1"], ["e2", "e3"], ["e4"]]
    assert [p["edits"] for p in result["curve"]] == [2, 4, 5]  # checkpoint 3 falls inside the second batch


def test_a_sequential_run_stopped_midway_has_reported_its_curve_points():
    scorer = FixedScorer()
    cases = [case(i, para=False) for i in range(4)]
    effects = {f"e{i}": {(f"S{i} lives in", "Rome"): -1.0} for i in range(3)}  # e3 has none: apply fails
    states = []
    try:
        evaluate_edits(scorer, TableEditor(scorer, effects), cases, "sequential", checkpoints=[1, 2, 3],
                       partial=states.append)
    except KeyError:
        pass
    else:
        raise AssertionError("the fourth edit should have failed")
    assert [s["edits_made"] for s in states] == [1, 2, 3]
    assert [p["edits"] for p in states[-1]["curve"]] == [1, 2, 3]
    assert states[-1]["curve"][-1]["efficacy"] == 1.0
