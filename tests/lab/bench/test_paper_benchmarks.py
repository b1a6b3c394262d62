"""The paper-reproduction benchmarks, end to end on miniature configurations.

Every run goes through the real ``gfm-accel`` entry point (``gfm_accel.cli.main``), writes
``results.json`` / ``table.md`` / figures into a temporary folder, and the tests check the
schema and the numbers (identities that must hold whatever the training noise).
"""

from __future__ import annotations

import json

import pytest
import torch

from gfm_accel.lab.bench import _forecast_eval as fe
from gfm_accel.lab.bench.common import RESULT_KEYS, SCHEMA_VERSION
from gfm_accel.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record(out):
    record = json.loads((out / "results.json").read_text())
    assert tuple(record) == RESULT_KEYS
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["wall_time_s"] > 0
    assert "torch" in record["machine"] and "threads" in record["machine"]
    assert record["command"]
    for name in record["figures"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    return record


def test_table1_miniature_end_to_end(tmp_path):
    out = tmp_path / "t1"
    rc = main(["bench", "table1", "--seeds", "0,1", "--optimizers", "sgd", "--epochs", "3", "--models",
               "last,mean,ridge,gfm", "--n-train", "20",
               "--n-test", "10", "--out", str(out), "--no-progress"])
    assert rc == 0
    rec = _record(out)
    assert rec["benchmark"] == "table1" and rec["seeds"] == [0, 1] and rec["quick"] is False
    assert rec["config"]["epochs"] == 3 and rec["config"]["models"] == ["last", "mean", "ridge", "gfm"]
    assert sorted(rec["figures"]) == ["figure2.png", "figure4.png"]
    cells = rec["results"]["cells"]
    assert set(cells) == {"last", "mean", "ridge", "gfm"}
    for key, c in cells.items():
        assert len(c["sgd"]["values"]) == 2, key
        assert c["sgd"]["mean"] == pytest.approx(sum(c["sgd"]["values"]) / 2)

    # "last" is w_4: its MSE is the mean squared distance w_4 -> w_199 of the test runs.
    expected = []
    for seed in (0, 1):
        w = fe.linreg_weights("sgd", seed, n_traj=30)
        expected.append(fe.mse(w[20:30, 4], w[20:30, 199]))
    assert cells["last"]["sgd"]["values"] == pytest.approx(expected, rel=1e-6)
    # On linreg, ridge on the prefix is a strong reference: it must beat the train mean.
    assert cells["ridge"]["sgd"]["mean"] < cells["mean"]["sgd"]["mean"]

    table = (out / "table.md").read_text()
    assert "gfm-accel bench table1" in table or "table1" in table
    assert ".021 (.013)" in table  # the paper's GFM/SGD cell beside ours
    assert rec["results"]["paper"]["gfm"]["sgd"] == [0.021, 0.013]


def test_table4_n0_reference_identity(tmp_path):
    out = tmp_path / "t4"
    assert main(["bench", "table4", "--seeds", "0", "--optimizers", "adam", "--epochs", "2", "--models", "last,gfm",
                 "--compare-n", "0", "--n-train", "10", "--n-test", "5", "--out", str(out), "--no-progress"]) == 0
    rec = _record(out)
    w = fe.linreg_weights("adam", 0, n_traj=15)
    # at n = 0 the last value is the initialization
    assert rec["results"]["cells"]["last"]["adam"]["mean"] == pytest.approx(fe.mse(w[10:, 0], w[10:, 199]), rel=1e-6)
    assert rec["results"]["compare"] is None
    assert rec["results"]["paper"]["sgd"] == [0.023, 0.008]


def test_mlp_miniature_loss_of_last_value_matches_recorded_curve(tmp_path):
    out = tmp_path / "mlp"
    assert main(["bench", "mlp", "--seeds", "0", "--optimizers", "adam", "--ns", "2", "--epochs", "2", "--models",
                 "last,gfm", "--n-traj", "10", "--out", str(out), "--no-progress"]) == 0
    rec = _record(out)
    assert rec["figures"] == ["figure3.png"]
    last = rec["results"]["cells"]["last"]["adam"]["2"]
    # forecasting w_m = w_n, loaded into the [4,1] nets, gives exactly the recorded loss at epoch n
    assert last["loss_forecast"]["mean"] == pytest.approx(last["loss_at_n"]["mean"], rel=1e-5)
    gfm = rec["results"]["cells"]["gfm"]["adam"]["2"]
    assert set(gfm) == {"param_mse", "loss_forecast", "loss_true_final", "loss_at_n", "frac_le_true"}
    assert 0.0 <= gfm["frac_le_true"]["mean"] <= 1.0
    assert gfm["loss_true_final"]["mean"] < gfm["loss_at_n"]["mean"]  # the data runs do train


def test_cifar_miniature_reports_not_run_memory(tmp_path):
    out = tmp_path / "cifar"
    assert main(["bench", "cifar", "--families", "transformer", "--runs", "4", "--data-epochs", "3", "--seeds", "0",
                 "--epochs", "2", "--n", "1", "--models", "last,lfd2,gfm", "--traj-dir", str(tmp_path / "traj"),
                 "--out", str(out), "--no-progress"]) == 0
    rec = _record(out)
    fam = rec["results"]["families"]["transformer"]
    assert fam["D"] == 10954 and fam["n_train"] == 2 and fam["m"] == 3
    assert fam["models"]["lfd2"] == {"status": "not run: memory"}
    assert fam["models"]["last"]["f_source"]["mean"] > 0
    assert "not run: memory" in (out / "table.md").read_text()


def test_cells_and_formatting():
    s = fe.summarize([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0)  # sample std, ddof = 1
    assert fe.summarize([0.5])["std"] == 0.0
    assert fe.fmt_cell(0.0213, 0.0131) == ".021 (.013)"
    assert fe.fmt_cell(309.361, 126.423) == "309.361 (126.423)"
    assert fe.fmt_cell(1.2e-5, 0.0) == "1.2e-05 (.000)"
    assert fe.cell_text({"status": "not run: memory"}) == "not run: memory"
    assert fe.mse(torch.zeros(2, 3), torch.ones(2, 3)) == 1.0
    with pytest.raises(ValueError, match="unknown model"):
        fe.resolve_models(["no_such_model"])


def test_verdicts_say_when_a_reference_beats_gfm():
    cells = {"gfm": {"sgd": {"mean": 0.05}}, "ridge": {"sgd": {"mean": 0.01}}, "lstm": {"sgd": {"mean": 0.2}}}
    (line,) = fe.verdicts(cells, ["sgd"])
    assert "`ridge` beat GFM" in line and "lstm" not in line


def test_sensitivity_quick_grid_miniature(tmp_path):
    out = tmp_path / "sens"
    assert main(["bench", "sensitivity", "--quick", "--seeds", "0", "--optimizers", "sgd", "--epochs", "2",
                 "--n-train", "6", "--n-test", "3", "--out", str(out), "--no-progress"]) == 0
    rec = _record(out)
    assert rec["quick"] is True and rec["config"]["grid"] == "quick"
    cells = rec["results"]["cells"]
    assert set(cells) == {"b1_g1_z1", "b1_g1_z10", "b1_g1_z100", "b0.1_g1_z10", "b0.1_g1_z100", "b1_g0.1_z100"}
    best = rec["results"]["best"]["sgd"]
    assert best["cell"]["mean"] == min(c["sgd"]["mean"] for c in cells.values())
    assert rec["results"]["paper"]["b1_g1_z100"]["sgd"] == [0.021, 0.013]
    assert "zeta = 100" in (out / "table.md").read_text()
