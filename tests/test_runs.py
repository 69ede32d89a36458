"""Run folders (demokit.runs) and their wiring into train-expert and bc-train."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demokit.cli.app import main
from demokit.errors import UserError
from demokit.runs import RunFolder, default_run_dir, read_run


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_run_folder_files_rows_and_summary(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights")
    with RunFolder("train-expert", "CartPole-v1", config={"seed": 3}, root=tmp_path / "runs", name="a") as run:
        run.add_scalar("train/loss", 0.5, 100)
        run.progress({"env_steps": 100, "total_timesteps": 1000, "episode_return": 12.0})
        run.add_scalar("train/loss", 0.25, 200)  # no evaluation, less than total/200 steps later: no row
        run.progress({"env_steps": 101, "total_timesteps": 1000, "episode_return": 13.0})
        run.add_scalar("eval/quick_mean_return", 42.0, 300)  # an evaluation always makes a row
        run.progress({"env_steps": 102, "total_timesteps": 1000, "episode_return": 14.0})
        run.finish({"mean_return": 50.0}, checkpoint=ckpt, final_row={"step": 400, "eval_return": 50.0})
    path = tmp_path / "runs" / "train-expert" / "CartPole-v1" / "a"
    assert run.path == path
    rows = _rows(path)
    assert [r["step"] for r in rows] == [100, 102, 400]
    assert rows[0]["train/loss"] == 0.5 and rows[0]["train_return"] == 12.0 and "eval_return" not in rows[0]
    assert rows[1]["eval_return"] == 42.0 and rows[1]["train/loss"] == 0.25
    assert rows[2]["eval_return"] == 50.0 and all(r["wall_s"] >= 0 for r in rows)
    assert json.loads((path / "summary.json").read_text()) | {"wall_s": 0} == {"status": "finished", "wall_s": 0,
                                                                            "mean_return": 50.0}
    assert json.loads((path / "config.json").read_text())["config"] == {"seed": 3}
    assert (path / "checkpoint.pt").read_bytes() == b"weights"
    back = read_run(path)
    assert back["rows"] == rows and back["summary"]["mean_return"] == 50.0


def test_existing_folder_is_refused_unless_overwrite(tmp_path):
    target = tmp_path / "run"
    with RunFolder("bc-train", "CartPole-v1", config={}, run_dir=target) as run:
        run.log_row({"step": 1, "eval_return": 1.0})
        run.finish({})
    with pytest.raises(UserError, match="already exists"):
        RunFolder("bc-train", "CartPole-v1", config={}, run_dir=target)
    with RunFolder("bc-train", "CartPole-v1", config={"again": True}, run_dir=target, overwrite=True) as run:
        run.finish({})
    assert _rows(target) == [] and json.loads((target / "config.json").read_text())["config"] == {"again": True}
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="not a run folder"):
        RunFolder("bc-train", "CartPole-v1", config={}, run_dir=other, overwrite=True)
    assert (other / "notes.txt").read_text() == "keep"


def test_failed_run_leaves_nothing_and_interrupted_run_keeps_rows(tmp_path):
    with pytest.raises(RuntimeError):
        with RunFolder("x", "CartPole-v1", config={}, run_dir=tmp_path / "failed") as run:
            run.log_row({"step": 1})
            raise RuntimeError("boom")
    assert not (tmp_path / "failed").exists()
    # the folders made for the run (runs/<command>/<env>/) go with it; ones that existed stay
    with pytest.raises(RuntimeError):
        with RunFolder("x", "CartPole-v1", config={}, run_dir=tmp_path / "runs" / "x" / "CartPole-v1" / "r"):
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        with RunFolder("x", "CartPole-v1", config={}, run_dir=tmp_path / "cut") as run:
            run.log_row({"step": 1, "eval_return": 3.0})
            raise KeyboardInterrupt
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "interrupted"
    assert _rows(tmp_path / "cut")[0]["eval_return"] == 3.0


def test_default_run_dir_is_unique_and_names_are_checked(tmp_path):
    first = default_run_dir("gail", "ALE/Pong-v5", root=tmp_path)
    assert first.parent == tmp_path / "gail" / "ALE_Pong-v5"
    first.mkdir(parents=True)
    assert default_run_dir("gail", "ALE/Pong-v5", root=tmp_path) != first
    with pytest.raises(UserError):
        default_run_dir("gail", "CartPole-v1", "a/b", root=tmp_path)


def test_read_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a run folder"):
        read_run(tmp_path)


def _event_scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(tb_dir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_train_expert_run_folder_and_tensorboard(tmp_path, capsys):
    pytest.importorskip("torch.utils.tensorboard")
    run_dir = tmp_path / "run"
    argv = ["train-expert", "--env", "CartPole-v1", "--timesteps", "2048", "--device", "cpu", "--seed", "1",
            "--out", str(tmp_path / "cp.pt"), "--run-dir", str(run_dir), "--tensorboard", str(tmp_path / "tb"),
            "--json"]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["run_dir"] == str(run_dir)
    run = read_run(run_dir)
    assert run["config"]["command"] == "train-expert" and run["config"]["resolved"]["total_timesteps"] == 2048
    assert run["config"]["reward_threshold"] == 475.0
    rows = run["rows"]
    assert rows[-1]["final"] and rows[-1]["eval_return"] == res["mean_return"]
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert (run_dir / "checkpoint.pt").read_bytes() == (tmp_path / "cp.pt").read_bytes()
    events = _event_scalars(tmp_path / "tb")
    # every training scalar of every row is in TensorBoard, at the row's env step
    loss = dict(events["train/policy_loss"])
    for row in rows[:-1]:
        assert loss[int(row["env_steps"])] == pytest.approx(row["train/policy_loss"], rel=1e-6)
    assert events["eval_return"][-1] == (res["env_steps"], pytest.approx(res["mean_return"], rel=1e-6))
    # the same folder again: refused with one error line, the run left as it was
    before = (run_dir / "metrics.jsonl").read_bytes()
    argv[argv.index("--out") + 1] = str(tmp_path / "other.pt")
    assert main(argv) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err)
    assert (run_dir / "metrics.jsonl").read_bytes() == before and not (tmp_path / "other.pt").exists()


def test_bc_train_run_folder_rows_per_epoch(tmp_path, capsys):
    import il_data

    data = tmp_path / "cp.h5"
    il_data.write_cartpole(data, 3, seed=1)
    assert main(["bc-train", str(data), "--epochs", "3", "--eval-every", "1", "--eval-episodes", "2",
                 "--out", str(tmp_path / "bc.pt"), "--run-name", "first", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = read_run(res["run_dir"])
    assert Path(res["run_dir"]) == Path("runs/bc-train/CartPole-v1/first")
    assert [r["epoch"] for r in run["rows"]] == list(range(1, len(run["rows"]) + 1))
    assert all("eval_return" in r and "loss" in r for r in run["rows"])
    assert run["rows"][-1]["eval_return"] == res["mean_return"]
    assert run["config"]["expert_return"] > 0 and run["summary"]["status"] == "finished"


def test_gail_run_folder_has_discriminator_statistics(tmp_path, capsys):
    import il_data

    pytest.importorskip("torch.utils.tensorboard")
    data = tmp_path / "cp.h5"
    il_data.write_cartpole(data, 4, seed=1)
    run_dir = tmp_path / "gail-run"
    assert main(["gail", "--expert", str(data), "--timesteps", "1200", "--device", "cpu", "--out",
                 str(tmp_path / "g.pt"), "--run-dir", str(run_dir), "--tensorboard", "run", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = read_run(res["run_dir"])
    assert run["config"]["algo"] == "gail-ppo" and run["config"]["expert_return"] > 0
    disc = [r for r in run["rows"] if "reward_model/d_expert" in r]
    assert disc and all(0 <= r["reward_model/d_expert"] <= 1 and 0 <= r["reward_model/d_policy"] <= 1 for r in disc)
    assert run["rows"][-1]["eval_return"] == res["mean_return"]
    events = _event_scalars(Path("run"))
    assert {"reward_model/d_expert", "reward_model/d_policy", "reward_model/loss"} <= set(events)


def test_dagger_run_folder_rows_per_round(tmp_path, capsys):
    import il_data

    il_data.save_controller(tmp_path / "expert.pt")
    assert main(["dagger", "--expert", str(tmp_path / "expert.pt"), "--rounds", "2", "--episodes-per-round", "1",
                 "--epochs", "2", "--eval-episodes", "2", "--out", str(tmp_path / "d.pt"), "--dataset-out",
                 str(tmp_path / "agg.h5"), "--run-name", "r", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = read_run(res["run_dir"])
    assert [r["round"] for r in run["rows"]] == [0, 1] and [r["step"] for r in run["rows"]] == [0, 1]
    assert [r["eval_return"] for r in run["rows"]] == res["returns"]
    assert (Path(res["run_dir"]) / "checkpoint.pt").exists()
