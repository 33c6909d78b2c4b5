"""The report writer on hand-made results: both tables, the curve plot, and reuse of finished runs."""
import json

from kme_chat.evaluation import report


def result(method, fmt, metrics, curve=None, **run):
    r = {"run": {"group": 1, **run}, "method": method, "format": fmt, "mode": "sequential", "n": 3,
         "metrics": metrics, "timings": {"edit_mean_s": 1.5, "query_mean_s": 0.25}}
    return r | ({"curve": curve} if curve else {})


def test_report_has_both_tables_and_the_curve(tmp_path):
    results = [
        result("ike", "counterfact", {"efficacy": 0.96, "locality": 1.0, "retainability": 0.95},
               curve=[{"edits": 1, "efficacy": 1.0, "locality": 1.0}, {"edits": 3, "efficacy": 0.5, "locality": 0.9}]),
        result("fact_chain", "mquake", {"multihop": 0.99, "path_followed": 0.98}, offset=100),
    ]
    path = report.write_report(results, tmp_path)
    text = path.read_text()
    assert "| ike | counterfact sequential | 3 | 0.960 | — |" in text
    assert "| fact_chain | mquake g1 from #100 | 3 | 0.990 |" in text
    assert (tmp_path / "sequential_curve.png").stat().st_size > 1000 and "sequential_curve.png" in text
    assert json.loads((tmp_path / "report.json").read_text())[0]["curve"][1]["efficacy"] == 0.5


def test_finished_runs_are_reused_not_rerun(tmp_path, monkeypatch):
    done = report.PLAN[0]
    report.save(result(done.method, done.format, {"efficacy": 0.5}), tmp_path / f"{done.name}.json")
    monkeypatch.setattr(report, "run_one", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rerun")))
    path = report.run_report(settings=None, only=[done.name], folder=tmp_path)
    assert "| ike | counterfact sequential | 3 | 0.500 |" in path.read_text()


def test_lifelong_report_has_a_row_per_measured_point_and_three_panels(tmp_path):
    curve = [{"edits": 100, "measured": 100, "efficacy": 1.0, "generality": 0.9, "locality": 0.95},
             {"edits": 1000, "measured": 1000, "efficacy": 0.97, "generality": 0.85, "locality": 0.8}]
    results = [result("alphaedit", "counterfact", {"efficacy": 0.97}, curve=curve, group=100, offset=8000)]
    text = report.write_lifelong(results, tmp_path).read_text()
    assert "Records #8000-#8002" in text          # the records the runs used, n = 3 here
    assert "| alphaedit | 100 | 1000 | 1000 | 0.970 | 0.850 | 0.800 | 0.015 |" in text   # 1.5 s per batch of 100
    assert (tmp_path / "lifelong_curve.png").stat().st_size > 1000


def test_a_run_with_changed_hyperparameters_is_its_own_run_and_row(tmp_path):
    run = report.Run("alphaedit", "counterfact", 1000, "sequential", group=100, offset=7000, hparams={"c_weight": 2000.0})
    assert run.name == "counterfact-1000@7000-alphaedit-sequential-b100-c_weight2000"
    curve = [{"edits": 100, "measured": 100, "efficacy": 1.0, "generality": 0.9, "locality": 0.95},
             {"edits": 200, "measured": 100, "efficacy": 0.9, "generality": 0.8, "locality": 0.85}]
    results = [result("alphaedit", "counterfact", {}, curve=curve, group=100),
               result("alphaedit", "counterfact", {}, curve=curve, group=100, hparams={"c_weight": 2000.0})]
    text = report.write_lifelong(results, tmp_path).read_text()
    assert "| alphaedit | 100 | 200 |" in text and "| alphaedit c_weight=2000 | 100 | 200 |" in text
