"""Locality probes: unrelated prompts whose answers must not change when an edit is made.

Defaults are the first known facts of ROME's known_1000 (../shared/data) when present, else
prompts/locality_probes.txt; the user can replace them. Each run answers every probe through the
assistant (memory context included) with the float model, greedy, so runs are comparable.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .config import REPO_ROOT
from .errors import UserError
from .memory import hiding, seen_by

log = logging.getLogger(__name__)

KNOWN_FACTS = REPO_ROOT.parent / "shared" / "data" / "known_1000.json"
DEFAULT_COUNT = 8


def default_probes() -> list[str]:
    path = Path(os.environ.get("KME_PROBES_FILE", KNOWN_FACTS))
    if path.suffix == ".json" and path.is_file():
        return [r["prompt"] for r in json.loads(path.read_text(encoding="utf-8"))[:DEFAULT_COUNT]]
    return [line.strip() for line in (REPO_ROOT / "prompts" / "locality_probes.txt").read_text().splitlines()
            if line.strip()]


@dataclass
class ProbeRun:
    prompts: list[str]
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return sum(b != a for b, a in zip(self.before, self.after))

    def rows(self) -> list[list[str]]:
        before = self.before or [""] * len(self.prompts)
        after = self.after or [""] * len(self.prompts)
        return [[p, b, a, "changed" if b and a and b != a else ""] for p, b, a in zip(self.prompts, before, after)]


def answer_probes(assistant, prompts: list[str], progress=None) -> list[str]:
    answers = []
    for i, prompt in enumerate(prompts):
        context = assistant.context_for(prompt)
        memory = "\n".join([t["content"] for t in context.turns] + [context.text]).strip() if context else ""
        shown = f"{memory}\n{prompt}" if memory else prompt
        answers.append(assistant.llm.complete(shown, max_new_tokens=6).strip())
        if progress:
            progress((i + 1) / len(prompts), desc=f"probe {i + 1}/{len(prompts)}")
    return answers


@dataclass
class WeightJob:
    """A weight edit running in the background while its person keeps chatting."""
    summary: str
    stage: str = "waiting for the model"
    stages: list = field(default_factory=list)  # every stage so far, in order (some last only ms)
    done: bool = False
    edit: object = None   # the saved Edit, once the edit log holds it
    error: str = ""


class Panel:
    """One browser session's side panel: its locality probes and its weight edit in progress.

    Committing is acknowledged as soon as the edit log holds the edit; the probes run after, in a
    thread, and fill the panel when done. For a memory edit the "before" answers are the memory
    without that edit (`hiding`), so nothing has to be probed before the commit."""

    def __init__(self, prompts: list[str], viewer: str | None = None):
        self.probes = ProbeRun(prompts)
        self.viewer = viewer          # whose memory the probes are answered with (None: all of it)
        self.probing = False          # a probe run is in progress
        self.probed_edit = ""         # the edit the last run measured
        self.job: WeightJob | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.done

    def drift_text(self) -> str:
        if self.probing:
            return f"⏳ Locality probes running for edit `{self.probed_edit}`…"
        if not self.probes.after:
            return "Probes run after each edit."
        if not self.probes.before:
            return "Probe answers shown; they are compared after the next edit."
        what = f"after edit `{self.probed_edit}`" if self.probed_edit else "since the last run"
        return f"**Drift:** {self.probes.drift} of {len(self.probes.prompts)} probes changed {what}."

    def probe_memory_edit(self, assistant, edit_id: str) -> None:
        """Before (the memory without this edit) and after, in a thread."""
        def run() -> None:
            with seen_by(self.viewer):
                with hiding([edit_id]):
                    before = answer_probes(assistant, self.probes.prompts)
                self._finish(before, answer_probes(assistant, self.probes.prompts))

        self._start_probes(edit_id, run)

    def _start_probes(self, edit_id: str, run) -> None:
        with self._lock:
            self.probing, self.probed_edit = True, edit_id

        def guarded() -> None:
            try:
                run()
            except Exception:  # a failed probe run must not take the panel down with it
                log.exception("locality probes failed")
                with self._lock:
                    self.probing = False
        threading.Thread(target=guarded, daemon=True, name=f"probes-{edit_id}").start()

    def _finish(self, before: list[str], after: list[str]) -> None:
        with self._lock:
            self.probes.before, self.probes.after, self.probing = before, after, False

    def start_weight_edit(self, assistant, edit, by=None) -> WeightJob:
        """Probes before, the edit stage by stage, probes after: all in a thread; the job says where it is."""
        job = self.job = WeightJob(edit.summary)

        def stage(text: str) -> None:
            job.stage = text
            job.stages.append(text)

        def run() -> None:
            with seen_by(self.viewer):
                measured()

        def measured() -> None:
            try:
                stage("locality probes before the edit")
                before = answer_probes(assistant, self.probes.prompts)
                job.edit = assistant.add_edit(edit, on_stage=stage, by=by)
                stage("locality probes after the edit")
                with self._lock:
                    self.probing, self.probed_edit = True, job.edit.id
                self._finish(before, answer_probes(assistant, self.probes.prompts))
            except UserError as exc:
                job.error = str(exc)
            except Exception as exc:  # shown to the person; the log holds nothing half-made (add_edit)
                log.exception("weight edit failed")
                job.error = (f"the weight edit failed ({type(exc).__name__}); nothing was saved" if job.edit is None
                             else f"edit {job.edit.id} is saved, but the locality probes after it failed")
            finally:
                with self._lock:
                    self.probing = False
                job.done = True
        threading.Thread(target=run, daemon=True, name="weight-edit").start()
        return job
