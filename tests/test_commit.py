"""Committing from the page: a memory edit is saved at once and probed after; a weight edit runs in
the background stage by stage while the chat goes on."""
import time

import pytest

from kme_chat.edit_log import Edit
from kme_chat.probes import Panel
from kme_chat.router import route_correction, with_fields, fields_of


def wait(condition, seconds: float = 600) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_memory_edit_is_saved_first_and_probed_after_against_the_memory_without_it(assistant):
    panel = Panel(["The capital of Latvia is", "The Eiffel Tower is located in"])
    routed = route_correction("What is the capital of Latvia?", "Riga", "No, it's Daugavpils.")
    routed = with_fields(routed, "fact", fields_of(routed.edit))
    edit = assistant.add_edit(routed.edit)
    panel.probe_memory_edit(assistant, edit.id)
    assert panel.probing and "running" in panel.drift_text()  # saved; the probes have not finished
    assert assistant.log.get(edit.id).status == "active"
    wait(lambda: not panel.probing)
    before, after = panel.probes.before, panel.probes.after
    assert "Daugavpils" not in before[0] and "Daugavpils" in after[0], (before, after)  # before = without the edit
    assert before[1] == after[1]                                  # the unrelated probe did not move
    assert panel.probes.drift == 1 and "1 of 2" in panel.drift_text()


@pytest.mark.slow
def test_weight_edit_runs_in_the_background_with_its_stages_while_chatting(assistant):
    panel = Panel(["The Eiffel Tower is located in"])
    prompt = "The mother tongue of Danielle Darrieux is"
    edit = Edit(subject="Danielle Darrieux", prompt=prompt, target_new="English", target_true="French",
                routes=["rome"])
    job = panel.start_weight_edit(assistant, edit)
    stages, answers = [], []
    while not job.done:
        if job.stage not in stages:
            stages.append(job.stage)
        if len(answers) < 1 and any("value" in s for s in stages):
            answers.append(assistant.engine.answer("What is the capital of France?", max_new_tokens=12))  # chat meanwhile
        time.sleep(0.05)
    assert not job.error and job.edit is not None and assistant.log.get(job.edit.id).status == "active"
    assert set(stages) - {"waiting for the model"} <= set(job.stages)        # the page polled some of them
    assert any("key k*" in s for s in job.stages) and any("value v*" in s for s in job.stages), job.stages
    assert answers and "Paris" in answers[0]
    assert panel.probes.before and panel.probes.after and "Drift" in panel.drift_text()
    assert assistant.llm.complete(prompt, 3).strip().startswith("English")
    assistant.undo(job.edit.id)
