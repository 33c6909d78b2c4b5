"""v*: the down-projection output at the subject's last token that makes the model say the new
object (ROME §3.2, "compute_v"). A residual δ added there is optimised for
  NLL(new object | prefix + prompt)  +  kl_factor · KL(essence prompt before ‖ after)  +  decay · |δ|²,
with |δ| clamped, then v* = W k* + δ."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch

from .batching import right_padded
from .compute_key import EditInputError, subject_last_token
from .hooks import thread_hook
from .upper_stack import UpperStack, hidden_below, value_dtype


class SplitBatch:
    """Rows cut at the subject's last token. δ only changes that token and what follows, so the
    part before it is run once (its keys and values cached) and each optimisation step runs only
    the few tokens from the subject's last token on: ~3x fewer tokens per step. Layers below the
    edited one do not see δ at all: their output is computed once for all tokens, and the steps
    start at the edited layer (`UpperStack`)."""

    def __init__(self, sequences: Sequence[list[int]], cut: Sequence[int], pad_id: int):
        n, width_p = len(sequences), max(cut)
        self.prefix = torch.full((n, width_p), pad_id)        # left-padded: all rows end at the cut
        self.prefix_mask = torch.zeros((n, width_p), dtype=torch.long)
        for i, (ids, c) in enumerate(zip(sequences, cut)):
            if c:
                self.prefix[i, width_p - c:] = torch.tensor(ids[:c])
                self.prefix_mask[i, width_p - c:] = 1
        self.suffix, self.suffix_mask = right_padded([ids[c:] for ids, c in zip(sequences, cut)], pad_id)
        cut_t = torch.tensor(list(cut))[:, None]
        self.prefix_positions = (torch.arange(width_p)[None, :] - (width_p - cut_t)).clamp(min=0)
        self.suffix_positions = cut_t + torch.arange(self.suffix.shape[1])[None, :]
        self.mask = torch.cat([self.prefix_mask, self.suffix_mask], 1)

    def select(self, rows: torch.Tensor) -> "SplitBatch":
        """These rows alone, padded as before (so a cache of the prefix can be selected alike)."""
        picked = copy.copy(self)
        for name in ("prefix", "prefix_mask", "suffix", "suffix_mask", "prefix_positions", "suffix_positions", "mask"):
            setattr(picked, name, getattr(self, name)[rows])
        return picked

    def start(self, model, stack: UpperStack, layer: int):
        """Runs what does not depend on δ: the layers below `layer` for all tokens, then the prefix
        through the stack (its cache). Returns (cache or None, the suffix entering `layer`)."""
        below = hidden_below(model, layer, torch.cat([self.prefix, self.suffix], 1), self.mask,
                             torch.cat([self.prefix_positions, self.suffix_positions], 1))
        width_p = self.prefix.shape[1]
        cache = None
        if width_p:
            cache = stack.run(below[:, :width_p], self.prefix_mask, self.prefix_positions, use_cache=True).cache
        return cache, below[:, width_p:]

    def suffix_hidden(self, stack: UpperStack, cache, suffix_below: torch.Tensor) -> torch.Tensor:
        past = copy.deepcopy(cache) if cache is not None else None  # the forward appends to the cache
        return stack.run(suffix_below, self.mask, self.suffix_positions, cache=past,
                         use_cache=past is not None).last_hidden_state


def object_token_ids(tokenizer, text: str) -> list[int]:
    """Token ids of an object as it follows a prompt: one leading space, no other padding."""
    return tokenizer(" " + text.strip())["input_ids"]


@dataclass
class ValueJob:
    """One edit's value step: the texts (prefix + prompt) that must end in the target, the
    essence prompt whose next-token distribution must stay as it was, and the subject in both."""
    texts: Sequence[str]
    essence: str
    subject: str
    target: str


def _target_ids(tokenizer, target: str, hp) -> list[int]:
    ids = object_token_ids(tokenizer, target)
    if not target.strip() or not ids:
        raise EditInputError("the new object is empty")
    if len(ids) > hp.max_target_tokens:
        raise EditInputError(f"the new object is {len(ids)} tokens; a weight edit takes at most "
                             f"{hp.max_target_tokens}")
    return ids


@dataclass
class _JobRows:
    """One edit's token rows: the prompts ending in the target (scored by NLL), then the essence."""
    sequences: list[list[int]]
    cuts: list[int]               # where each row's subject ends
    scored: list[tuple[int, int, int]]  # (row, position after the cut, target token) per NLL term
    essence_position: int         # the essence row's last token, after its cut


def _job_rows(tokenizer, job: ValueJob, hp) -> _JobRows:
    target_ids = _target_ids(tokenizer, job.target, hp)
    rows = _JobRows([], [], [], 0)
    for text in job.texts:
        ids = tokenizer(text)["input_ids"]
        cut = subject_last_token(tokenizer, text, job.subject)
        rows.scored += [(len(rows.sequences), len(ids) - 1 + t - cut, token)  # position len(ids)-1+t predicts token t
                        for t, token in enumerate(target_ids)]
        rows.sequences.append(ids + target_ids[:-1])
        rows.cuts.append(cut)
    essence_ids = tokenizer(job.essence)["input_ids"]
    cut = subject_last_token(tokenizer, job.essence, job.subject)
    rows.essence_position = len(essence_ids) - 1 - cut
    rows.sequences.append(essence_ids)
    rows.cuts.append(cut)
    return rows


class _Layout:
    """The rows of some edits as one split batch, and where the loss reads it. The loss reads a
    few positions only (target tokens, each essence's last token): the LM head (a 49k-word
    vocabulary) runs on those alone."""

    def __init__(self, model, stack: UpperStack, layer: int, rows: Sequence[_JobRows], jobs: Sequence[int],
                 pad_id: int, parent: "_Layout | None" = None):
        self.model, self.stack, self.layer, self.rows = model, stack, layer, rows
        self.jobs = torch.tensor(list(jobs))
        sequences, cuts, owner, nll_row, nll_pos, nll_owner, wanted, kl_row, kl_pos = ([] for _ in range(9))
        self.rows_of: dict[int, list[int]] = {}  # job -> its rows in this batch
        for local, job in enumerate(jobs):
            first = len(sequences)
            for row, pos, token in rows[job].scored:
                nll_row.append(first + row)
                nll_pos.append(pos)
                nll_owner.append(local)
                wanted.append(token)
            kl_row.append(first + len(rows[job].sequences) - 1)
            kl_pos.append(rows[job].essence_position)
            sequences += rows[job].sequences
            cuts += rows[job].cuts
            owner += [job] * len(rows[job].sequences)
            self.rows_of[job] = list(range(first, len(sequences)))
        self.owner = torch.tensor(owner)            # whose δ each row gets
        self.row_index, self.pos_index = torch.tensor(nll_row + kl_row), torch.tensor(nll_pos + kl_pos)
        self.scored = len(nll_row)
        self.nll_owner, self.wanted = torch.tensor(nll_owner), torch.tensor(wanted)
        self.tokens = torch.zeros(len(jobs)).index_add_(0, self.nll_owner, torch.ones(len(nll_owner)))
        if parent is None:
            self.batch = SplitBatch(sequences, cuts, pad_id)
            with torch.no_grad():
                self.cache, self.suffix_below = self.batch.start(model, stack, layer)
        else:  # what does not depend on δ is the parent's, for these rows: selected, not run again
            picked = torch.tensor([r for job in jobs for r in parent.rows_of[job]])
            self.batch = parent.batch.select(picked)
            self.suffix_below = parent.suffix_below[picked]
            self.cache = None
            if parent.cache is not None:
                self.cache = copy.deepcopy(parent.cache)
                self.cache.batch_select_indices(picked)

    def subset(self, jobs: Sequence[int]) -> "_Layout":
        """The layout of some of these edits (those still running), without running any layer."""
        return type(self)(self.model, self.stack, self.layer, self.rows, jobs, None, parent=self)

    def with_delta(self, delta: torch.Tensor):
        """Within this block the edited layer's MLP output gets each row's δ (`delta[owner]`) at the
        row's first suffix token, its subject's last token. The stack is a private copy: other
        chats never see δ."""
        def add(mod, args, output):
            out = output.clone()
            out[:, 0] += delta[self.owner].to(out.dtype)
            return out

        return thread_hook(self.stack.mlp(self.layer), add)

    def logp(self) -> torch.Tensor:
        hidden = self.batch.suffix_hidden(self.stack, self.cache, self.suffix_below)
        return torch.log_softmax(self.stack.lm_head(hidden[self.row_index, self.pos_index]).float(), -1)

    def nll_and_essence(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL of the target per edit, and the essence's next-token log-probabilities."""
        logp = self.logp()
        picked = logp[:self.scored].gather(1, self.wanted[:, None])[:, 0]
        nll = torch.zeros(len(self.jobs)).index_add(0, self.nll_owner, -picked) / self.tokens
        return nll, logp[self.scored:]


def compute_deltas(model, tokenizer, layer: int, jobs: Sequence[ValueJob], w_ks: torch.Tensor, hp,
                   rebatch_below: float = 1.0, stack: UpperStack | None = None) -> torch.Tensor:
    """δ for several edits at once, (n, hidden). Each edit has its own δ, rows and loss; the loss
    summed over edits gives each δ exactly its own gradient, and Adam works per coordinate, so the
    result is what one call per edit would give, in fewer, larger forwards. An edit stops once its
    NLL is low enough (its δ is kept as it was then); once fewer than `rebatch_below` of the
    batch's edits are still running (by default: as soon as one stops), the batch is rebuilt from
    those alone, by selecting their rows of what was already run. The steps run on
    `stack` (layers `layer`.. in `hp.value_dtype`; made here when not given)."""
    rows = [_job_rows(tokenizer, job, hp) for job in jobs]
    if stack is None or stack.first != layer:
        stack = UpperStack(model, layer, value_dtype(hp.value_dtype))
    stack.sync()
    n = len(jobs)
    k_norm_sq = w_ks.norm(dim=1) ** 2
    max_norm = hp.clamp_norm * w_ks.norm(dim=1)
    delta = torch.zeros(n, w_ks.shape[1], requires_grad=True)
    layout = _Layout(model, stack, layer, rows, range(n), tokenizer.pad_token_id)
    if hp.v_method == "line_search":
        return _line_search(layout, delta, max_norm, hp)

    base = None  # the essences' next-token distributions before the edit: step 0's, where δ = 0
    optimiser = torch.optim.Adam([delta], lr=hp.v_lr)
    result = torch.zeros(n, w_ks.shape[1])
    done = torch.zeros(n, dtype=torch.bool)
    for step in range(hp.v_steps):
        running = (~done).nonzero()[:, 0]
        if len(running) < rebatch_below * len(layout.jobs):
            layout = layout.subset(running.tolist())
        ids = layout.jobs
        optimiser.zero_grad()
        with layout.with_delta(delta):  # (not around a layout's prefix cache)
            nll, essence = layout.nll_and_essence()
        if base is None:
            base = essence.detach()
        kl = (base[ids].exp() * (base[ids] - essence)).sum(-1)  # KL(before ‖ after) per edit
        loss = nll + hp.kl_factor * kl + hp.v_weight_decay * (delta[ids] ** 2).sum(1) / k_norm_sq[ids]
        bad = ~torch.isfinite(loss) & ~done[ids]
        if bad.any():
            subject = jobs[int(ids[bad][0])].subject
            raise EditInputError(f"the optimisation diverged (NaN) for {subject!r}; nothing was changed")
        finished = ids[(nll.detach() < hp.v_stop_nll) & ~done[ids]]  # the new object is likely enough
        result[finished] = delta.detach()[finished]
        done[finished] = True
        if done.all():
            break
        (loss * ~done[ids]).sum().backward()
        optimiser.step()
        with torch.no_grad():
            delta.copy_(_clamped(delta, max_norm))
    result[~done] = delta.detach()[~done]  # ran out of steps: the last δ
    return result


def _clamped(vectors: torch.Tensor, max_norm: torch.Tensor) -> torch.Tensor:
    """Each row of `vectors` scaled down to at most its `max_norm` in length."""
    norms = vectors.norm(dim=1)
    return vectors * torch.where(norms > max_norm, max_norm / norms, torch.ones_like(norms))[:, None]


def _line_search(layout: _Layout, delta: torch.Tensor, max_norm: torch.Tensor, hp) -> torch.Tensor:
    """A few gradient directions instead of an optimisation loop (in the spirit of UltraEdit's one
    step): per round, one backward gives each edit the NLL's steepest direction from where it is;
    forwards without gradients then try lengths `hp.v_lengths` (shares of the clamp norm) along it,
    and each edit keeps the shortest length that brings its NLL under `hp.v_stop_nll`, else the
    best one (shortest first stands in for the KL and decay terms: the smallest change that does
    it). Edits that reach the stop leave; `hp.v_rounds` rounds at most. Measured against Adam's
    loop in the README (value step): not adopted."""
    n = delta.shape[0]
    current = torch.zeros_like(delta.detach())
    done = torch.zeros(n, dtype=torch.bool)

    def nll_at(value: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), layout.with_delta(value):
            return layout.nll_and_essence()[0]

    for _ in range(hp.v_rounds):
        delta.data.copy_(current)
        delta.grad = None
        with layout.with_delta(delta):
            nll, _ = layout.nll_and_essence()
        if not torch.isfinite(nll).all():
            raise EditInputError("the value step diverged (NaN); nothing was changed")
        done |= nll.detach() < hp.v_stop_nll
        if done.all():
            break
        nll.sum().backward()
        grad = delta.grad.detach()
        direction = -grad / grad.norm(dim=1, keepdim=True).clamp(min=1e-12)
        best, best_nll = current.clone(), nll.detach().clone()
        chosen = done.clone()
        for share in hp.v_lengths:  # shortest first: the smallest change that does it
            trial = _clamped(current + direction * (share * max_norm)[:, None], max_norm)
            trial_nll = nll_at(trial)
            better = ~chosen & (trial_nll < best_nll)
            best[better], best_nll[better] = trial[better], trial_nll[better]
            chosen |= trial_nll < hp.v_stop_nll
        current = torch.where(done[:, None], current, best)
    return current


def compute_delta(model, tokenizer, layer: int, texts: Sequence[str], essence: str, subject: str,
                  target: str, w_k: torch.Tensor, hp, stack: UpperStack | None = None) -> torch.Tensor:
    """δ for one edit (ROME)."""
    return compute_deltas(model, tokenizer, layer, [ValueJob(texts, essence, subject, target)], w_k[None], hp,
                          stack=stack)[0]
