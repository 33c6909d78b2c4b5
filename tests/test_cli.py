"""The `kme-chat` command as a user runs it: offline, answers from the packaged model, clear errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared

KME = str(Path(sys.executable).parent / "kme-chat")
pytestmark = pytest.mark.slow


def run(*args, data_dir, input=None, extra_env=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KME_DATA_DIR": str(data_dir), **(extra_env or {})}
    return subprocess.run([KME, *args], capture_output=True, env=env, input=input, timeout=600)


def test_chat_answers_offline_from_the_packaged_model(tmp_path):
    out = run("chat", "What is the capital of France?", data_dir=tmp_path)
    assert out.returncode == 0, out.stderr.decode()
    assert "Paris" in out.stdout.decode()


@pytest.mark.parametrize("message, expected", [
    (b"", b"message is empty"),
    (b"x" * 100_000, b"too long"),
    (b"caf\xe9 \xff\xfe", b"not valid UTF-8"),
])
def test_bad_messages_get_a_clear_error_and_no_traceback(tmp_path, message, expected):
    out = run("chat", message, data_dir=tmp_path)
    assert out.returncode == 2
    assert expected in out.stderr and b"Traceback" not in out.stderr


def test_missing_and_corrupt_models_are_reported(tmp_path):
    out = run("--model", str(tmp_path / "nope.gguf"), "chat", "hi", data_dir=tmp_path)
    assert out.returncode == 2 and b"model not found" in out.stderr and b"Traceback" not in out.stderr
    corrupt = tmp_path / "broken.gguf"
    corrupt.write_bytes(b"GGUF" + os.urandom(4096))
    out = run("--model", str(corrupt), "chat", "hi", data_dir=tmp_path)
    assert out.returncode == 2 and b"could not load the model" in out.stderr and b"Traceback" not in out.stderr


def test_eval_refuses_a_file_of_the_wrong_format(tmp_path):
    out = run("eval", "--data", str(shared("zsre_mend_train-1k.json")), "--format", "counterfact", data_dir=tmp_path)
    assert out.returncode == 2 and b"does not look like counterfact" in out.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run("eval", "--data", str(bad), "--format", "zsre", data_dir=tmp_path)
    assert out.returncode == 2 and b"not a JSON file" in out.stderr and b"Traceback" not in out.stderr


def test_eval_and_report_refuse_bad_options_before_loading_anything(tmp_path):
    data = str(shared("counterfact-edit.json"))
    out = run("eval", "--data", data, "--format", "counterfact", "--method", "oracle", data_dir=tmp_path)
    assert out.returncode == 2 and b"unknown method 'oracle'" in out.stderr
    out = run("eval", "--data", data, "--format", "counterfact", "--checkpoints", "1,ten", data_dir=tmp_path)
    assert out.returncode == 2 and b"--checkpoints takes edit counts" in out.stderr
    out = run("report", "--only", "no-such-run", data_dir=tmp_path)
    assert out.returncode == 2 and b"nothing in the plan matches" in out.stderr


@pytest.mark.parametrize("fmt, name, limit", [("counterfact", "counterfact-edit.json", 3),
                                              ("zsre", "zsre_mend_train-1k.json", 3),
                                              ("mquake", "MQuAKE-hard.json", 1)])
def test_eval_none_runs_on_every_shared_format(tmp_path, fmt, name, limit):
    out_json = tmp_path / "r.json"
    out = run("eval", "--data", str(shared(name)), "--format", fmt, "--method", "none", "--limit", str(limit),
              "--json", str(out_json), data_dir=tmp_path)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    result = json.loads(out_json.read_text())
    assert result["n"] == limit and result["method"] == "none"
    metrics = result["metrics"]
    expected = {"multihop", "multihop_original"} if fmt == "mquake" else {"efficacy", "efficacy_em", "generality", "locality"}
    assert expected <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    if fmt != "mquake":
        assert metrics["locality"] == 1.0  # nothing was edited: every neighbour keeps its prediction
    assert result["timings"]["query_count"] > 0


def test_eval_chains_stores_by_correction_and_asks_chat_and_reader(tmp_path):
    data = Path(__file__).parent / "data" / "chains_small.jsonl"
    out_json = tmp_path / "chains.json"
    out = run("eval", "--format", "chains", "--data", str(data), "--json", str(out_json), data_dir=tmp_path)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    result = json.loads(out_json.read_text())
    metrics = result["metrics"]
    assert metrics["chains"] == 1 and metrics["unrelated"] == 1 and metrics["facts_not_stored"] == 0
    assert metrics["chain_accuracy_chat"] == 1.0 and metrics["chain_accuracy_reader"] == 1.0
    assert metrics["unrelated_unchanged"] == 1.0
    chain = result["cases"][0]
    assert chain["chat"].startswith("Tallinn — ") and len(chain["reader_hops"]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"facts": "none", "question": "x"}\n')
    out = run("eval", "--format", "chains", "--data", str(bad), data_dir=tmp_path)
    assert out.returncode == 2 and b"needs facts" in out.stderr and b"Traceback" not in out.stderr
