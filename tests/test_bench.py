"""Smoke tests of the benchmark commands at tiny sizes (the numbers live in BENCHMARKS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kamoe.bench.reproduce import CALIFORNIA_REF, CRYPTO_REF
from kamoe.cli import main
from kamoe.nn.kan import native_available

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_speed_bench_prints_a_ratio_per_shape(capsys):
    code = main(["bench", "speed", "--shapes", "32,4,4;16,3,2", "--repeats", "3", "--warmup", "1",
                 "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["rows"]
    assert [(r["batch"], r["in"], r["out"]) for r in rows] == [(32, 4, 4), (16, 3, 2)]
    assert all(r["ratio"] > 0 and r["kan_ms"] > 0 and r["linear_ms"] > 0 for r in rows)
    assert result["path"] == ("native kernels" if native_available() else "torch path")


def test_speed_bench_can_time_the_torch_path(capsys):
    code = main(["bench", "speed", "--shapes", "16,3,2", "--repeats", "3", "--warmup", "1",
                 "--variant", "torch-path", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["path"] == "torch path"


def test_speed_bench_rejects_bad_shapes(capsys):
    assert main(["bench", "speed", "--shapes", "1,2"]) == 2
    assert "--shapes" in capsys.readouterr().err


def test_reference_tables_cover_every_default_cell():
    # 2 families x 3 variants x 5 published widths x 2 depths (the default cells, widths 25 and
    # 100, among them), and 2 assets x 2 horizons x 2 cells x 3 variants.
    assert len(CALIFORNIA_REF) == 60 and len(CRYPTO_REF) == 24
    assert CALIFORNIA_REF[("kan", "kamoe", 100, 1)] == pytest.approx(0.782804)
    assert CRYPTO_REF[("BTC", 6, "lstm", "kamoe")] == pytest.approx(0.087766)


@pytest.mark.skipif(not (SHARED / "sklearn" / "cal_housing_py3.pkz").is_file(),
                    reason="shared California cache file absent (../shared/data/sklearn)")
def test_reproduce_california_runs_one_cell(tmp_path, capsys):
    out = tmp_path / "ca.md"
    code = main(["bench", "reproduce", "california", "--families", "mlp", "--variants",
                 "standard", "--widths", "5", "--depths", "1", "--seeds", "1", "--max-epochs",
                 "2", "--data-home", str(SHARED / "sklearn"), "--out", str(out)])
    assert code == 0
    table = out.read_text()
    assert "| mlp | standard | 5 | 1 | 1 |" in table  # cell, then the number of seeds
    assert json.loads(out.with_suffix(".json").read_text())[0]["epochs"] == 2
    # a second seed in a separate run, then both runs' results joined without refitting
    out2 = tmp_path / "ca2.md"
    assert main(["bench", "reproduce", "california", "--families", "mlp", "--variants",
                 "standard", "--widths", "5", "--depths", "1", "--seeds", "1", "--first-seed",
                 "1", "--max-epochs", "2", "--data-home", str(SHARED / "sklearn"), "--out",
                 str(out2)]) == 0
    assert json.loads(out2.with_suffix(".json").read_text())[0]["seed"] == 1
    capsys.readouterr()
    assert main(["bench", "reproduce", "california", "--from-json",
                 f"{out.with_suffix('.json')},{out2.with_suffix('.json')}"]) == 0
    assert "| mlp | standard | 5 | 1 | 2 |" in capsys.readouterr().out


@pytest.mark.skipif(not (SHARED / "crypto").is_dir(), reason="shared crypto CSVs absent")
def test_reproduce_crypto_runs_one_cell(tmp_path):
    out = tmp_path / "cr.md"
    code = main(["bench", "reproduce", "crypto", "--data", str(SHARED / "crypto"), "--targets",
                 "BTC", "--horizons", "1", "--cells", "gru", "--variants", "kamoe", "--units",
                 "4", "--seeds", "1", "--max-epochs", "1", "--start", "2021-03-01", "--out",
                 str(out)])
    assert code == 0
    assert "| BTC | 1 | gru | kamoe |" in out.read_text()


def test_reproduce_reports_a_missing_data_folder(tmp_path, capsys):
    code = main(["bench", "reproduce", "crypto", "--data", str(tmp_path / "none"), "--seeds", "1"])
    assert code == 2
    assert "kamoe: error:" in capsys.readouterr().err


def test_reproduce_from_json_refuses_files_it_cannot_use(tmp_path, capsys):
    not_json = tmp_path / "a.json"
    not_json.write_text("not json")
    wrong = tmp_path / "b.json"
    wrong.write_text(json.dumps([{"family": "mlp", "r2": 0.7}]))  # California keys, no crypto
    for name, needle in ((tmp_path / "none.json", "cannot read"), (not_json, "is not JSON"),
                         (wrong, "does not hold crypto results")):
        assert main(["bench", "reproduce", "crypto", "--from-json", str(name)]) == 2
        err = capsys.readouterr().err
        assert needle in err and "--out FILE" in err


def test_ecosystem_cv_bench_reports_every_fold(capsys):
    assert main(["bench", "ecosystem", "cv", "--n", "100", "--json"]) == 0  # small: ~3 s
    result = json.loads(capsys.readouterr().out)
    assert len(result["folds"]) == 5 and result["n"] == 100
    assert result["mean_r2"] == pytest.approx(sum(result["folds"]) / 5, abs=1e-5)


def test_feynman_bench_reads_formulas_through_the_kan_path(capsys):
    code = main(["bench", "feynman", "--equations", "I.12.1", "--paths", "kan", "--jobs", "1",
                 "--time-limit", "60", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert row["id"] == "I.12.1" and row["runner"] == "kamoe" and row["recovered"]
    assert row["method"].startswith("kan")  # --paths kan: the formula is read from a KAN
    assert set(row) >= {"formula", "method", "network_r2", "r2_test", "seconds"}
    assert out["summary"]["kamoe"]["recovered"] == 1
    assert out["summary"]["kamoe"]["by_method"] == {row["method"]: 1}


def test_feynman_bench_splits_tuning_and_holdout_and_refuses_bad_options(capsys):
    from kamoe.bench.feynman import HOLDOUT, equation_ids
    from kamoe.data import feynman_ids

    tuning, holdout = equation_ids("tuning"), equation_ids("holdout")
    assert len(holdout) == 30 and set(holdout) == set(HOLDOUT)  # every held-out ID is real
    assert not set(tuning) & set(holdout) and len(tuning) + len(holdout) == len(feynman_ids())
    assert main(["bench", "feynman", "--equations", "I.12.1", "--paths", "kan,magic"]) == 2
    assert "magic" in capsys.readouterr().err
    assert main(["bench", "feynman", "--equations", "I.12.1", "--peers", "eureqa"]) == 2
    assert "eureqa" in capsys.readouterr().err
