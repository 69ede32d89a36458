"""`demokit bc-train` and `demokit dagger`: --json, default paths, bad inputs (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import il_data
from demokit.cli.app import main
from demokit.policies import load_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("imitation-cli")
    il_data.write_cartpole(d / "cp.h5", 4, seed=1)
    il_data.write_empty(d / "empty.h5")
    il_data.write_with_nan(d / "nan.h5")
    il_data.save_controller(d / "expert.pt")
    return d


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_bc_train_json_and_checkpoint(data, tmp_path, capsys):
    out = tmp_path / "bc.pt"
    rc = main(["bc-train", str(data / "cp.h5"), "--epochs", "30", "--eval-every", "2", "--eval-episodes", "5",
               "--hidden", "32,32", "--seed", "2", "--out", str(out), "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = _last_json(cap.out)
    assert set(res) == {"checkpoint", "mean_return", "std_return", "epochs", "samples_per_s", "converged", "wall_s",
                        "tuned_defaults", "run_dir"}
    assert res["tuned_defaults"] == {}  # CartPole-v1 has no tuned BC row: the generic defaults
    assert res["checkpoint"] == str(out) and res["converged"] and res["mean_return"] >= 475
    assert res["epochs"] <= 30 and res["samples_per_s"] > 0
    ck = load_checkpoint(out)
    assert ck.algo == "bc" and ck.policy.arch.hidden_sizes == (32, 32) and ck.training["config"]["seed"] == 2
    assert "bc-train" in cap.err  # progress on stderr
    # an ordinary policy checkpoint: `demokit eval` takes it like any expert
    assert main(["eval", "--policy", str(out), "--episodes", "2", "--json"]) == 0
    assert _last_json(capsys.readouterr().out)["mean_return"] > 100


def test_bc_train_default_out_is_policies_stem_bc(data, capsys):
    rc = main(["bc-train", str(data / "cp.h5"), "--epochs", "1", "--eval-episodes", "0"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert Path("policies/cp-bc.pt").exists()  # relative to the test's temp cwd
    assert "wrote policies/cp-bc.pt" in cap.out
    assert "BC defaults for CartPole-v1: the generic ones" in cap.out  # which defaults it used


@pytest.mark.parametrize("args,needle", [
    (["--env", "Acrobot-v1"], "observation space"),
    (["--env", "NoSuchEnv-v9"], "unknown env"),
    (["--epochs", "0"], "epochs"),
    (["--hidden", "64,abc"], "integer"),
    (["--loss", "huber"], "loss"),
    (["--device", "tpu"], "--device"),
])
def test_bc_train_bad_options_exit_2_and_write_nothing(data, tmp_path, capsys, args, needle):
    out = tmp_path / "x.pt"
    rc = main(["bc-train", str(data / "cp.h5"), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("error:") and needle in lines[-1] and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("name,needle", [("empty.h5", "empty"), ("nan.h5", "NaN/inf"), ("missing.h5", "does not exist")])
def test_bc_train_bad_datasets_exit_2_and_write_nothing(data, tmp_path, capsys, name, needle):
    out = tmp_path / "x.pt"
    rc = main(["bc-train", str(data / name), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in err and not out.exists()


def test_dagger_json(data, tmp_path, capsys):
    out, agg = tmp_path / "dagger.pt", tmp_path / "agg.h5"
    rc = main(["dagger", "--expert", str(data / "expert.pt"), "--rounds", "2", "--episodes-per-round", "1",
               "--epochs", "3", "--eval-episodes", "2", "--beta-schedule", "constant:0", "--out", str(out),
               "--dataset-out", str(agg), "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = _last_json(cap.out)
    assert res["checkpoint"] == str(out) and res["dataset"] == str(agg)
    assert len(res["returns"]) == 2 and res["betas"] == [1.0, 0.0]
    assert load_checkpoint(out).algo == "dagger" and agg.exists()
    rc = main(["dagger", "--expert", str(data / "expert.pt"), "--rounds", "1", "--dataset-out", str(agg)])
    assert rc == 2 and "--force" in capsys.readouterr().err


def test_dagger_default_paths_and_bad_schedule(data, capsys):
    rc = main(["dagger", "--expert", str(data / "expert.pt"), "--beta-schedule", "cosine"])
    assert rc == 2 and "beta schedule" in capsys.readouterr().err
    assert not Path("policies").exists() and not Path("datasets").exists()
    rc = main(["dagger", "--expert", str(data / "expert.pt"), "--keep-best", "--eval-episodes", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error:") and "keep_best" in err
    assert "Traceback" not in err and not Path("policies").exists() and not Path("datasets").exists()
    rc = main(["dagger", "--expert", str(data / "expert.pt"), "--rounds", "1", "--episodes-per-round", "1",
               "--epochs", "1", "--eval-episodes", "0"])
    assert rc == 0, capsys.readouterr().err
    assert Path("policies/cartpole-v1-dagger.pt").exists() and Path("datasets/cartpole-v1-dagger.h5").exists()


def test_bc_train_stream_history_and_a_memory_cap_too_small(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "bc.pt"
    rc = main(["bc-train", str(data / "cp.h5"), "--stream", "--history", "2", "--epochs", "2", "--eval-episodes", "0",
               "--out", str(out), "--json"])
    assert rc == 0, capsys.readouterr().err
    ck = load_checkpoint(out)
    assert ck.policy.arch.history == 2 and ck.training["data"]["stream"]
    capsys.readouterr()
    runs = sorted(p.name for p in (tmp_path / "runs").rglob("*"))
    rc = main(["bc-train", str(data / "cp.h5"), "--max-memory", "0.01", "--out", str(tmp_path / "no.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: max_memory_mb 0.01 is too small") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no.pt").exists() and sorted(p.name for p in (tmp_path / "runs").rglob("*")) == runs


def test_bc_train_regularisation_options_reach_the_config(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "bc.pt"
    rc = main(["bc-train", str(data / "cp.h5"), "--epochs", "2", "--eval-episodes", "0", "--obs-noise", "0.1",
               "--weight-decay", "0.01", "--lr-schedule", "linear", "--no-normalize-obs", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    cfg = load_checkpoint(out).training["config"]
    assert (cfg["obs_noise"], cfg["weight_decay"], cfg["lr_schedule"], cfg["normalize_obs"]) == \
        (0.1, 0.01, "linear", False)
    capsys.readouterr()
    rc = main(["bc-train", str(data / "cp.h5"), "--obs-noise", "-1", "--out", str(tmp_path / "no.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "obs_noise" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no.pt").exists()


def test_bc_train_ensemble_flag(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pendulum = il_data.write_pendulum(tmp_path / "pendulum.h5", 3, noise=0.1)
    out = tmp_path / "ens.pt"
    rc = main(["bc-train", str(pendulum), "--epochs", "2", "--eval-episodes", "0", "--ensemble", "3",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    ck = load_checkpoint(out)
    assert ck.policy.arch.ensemble == 3 and ck.training["config"]["ensemble"] == 3
    for argv in (["bc-train", str(pendulum), "--ensemble", "0", "--out", str(tmp_path / "no.pt")],
                 ["bc-train", str(data / "cp.h5"), "--ensemble", "2", "--out", str(tmp_path / "no.pt")],
                 ["dagger", "--expert", str(data / "expert.pt"), "--ensemble", "0", "--out", str(tmp_path / "no.pt"),
                  "--dataset-out", str(tmp_path / "no.h5")]):
        capsys.readouterr()
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error:") and "ensemble" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "no.pt").exists() and not (tmp_path / "no.h5").exists()
