"""benchmarks/mujoco_table.py: the cell cache (trained once, retrained when a setting changes, re-evaluated
when the episode count changes), the skipped envs, the table. Training and evaluation are stubbed: the
cache logic is what is tested here, on a small CartPole dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import il_data

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import mujoco_table as table  # noqa: E402


class Stub:
    """Counts the cells trained and evaluated; writes a placeholder policy file."""

    def __init__(self) -> None:
        self.trained: list[tuple] = []
        self.evaluated: list[tuple] = []

    def train(self, method, env_id, k, seed, *, data, expert, gail_steps, out) -> dict:
        self.trained.append((method, k, seed))
        from demokit.data import load_dataset

        assert load_dataset(data).num_episodes == k  # the first k episodes of the source
        Path(out).write_bytes(b"policy")
        return {"env_steps": 0, "wall_s": 1.0}

    def evaluate(self, policy, env_id, seed, episodes) -> dict:
        self.evaluated.append((Path(policy).name, episodes))
        return {"episodes": episodes, "seed": table.eval_seed(seed), "mean_return": 100.0 + seed, "std_return": 1.0,
                "wall_s": 0.1}


@pytest.fixture()
def source(tmp_path) -> Path:
    return il_data.write_cartpole(tmp_path / "source.h5", 3, seed=0)


def _run(stub: Stub, source: Path, cache: Path, **kw: Any) -> tuple[dict, str]:
    args = dict(source=source, expert=None, cache=cache, gail_steps=1000, episodes=5, fresh=False)
    args.update(kw)
    return table.run_cell("CartPole-v1", "bc", 2, 0, trainer=stub.train, evaluator=stub.evaluate, **args)


def test_cell_is_trained_once_then_cached(source, tmp_path):
    stub, cache = Stub(), tmp_path / "cache"
    cell, done = _run(stub, source, cache)
    assert done == "trained" and stub.trained == [("bc", 2, 0)] and len(stub.evaluated) == 1
    saved = json.loads((cache / "cells" / "CartPole-v1-bc-k2-s0.json").read_text())
    assert saved["eval"]["mean_return"] == 100.0 and saved["settings"]["bc"]["loss"] == "nll"
    cell2, done2 = _run(stub, source, cache)
    assert done2 == "cached" and len(stub.trained) == 1 and len(stub.evaluated) == 1 and cell2 == saved
    _, done3 = _run(stub, source, cache, fresh=True)
    assert done3 == "trained" and len(stub.trained) == 2


def test_other_episode_count_re_evaluates_without_training(source, tmp_path):
    stub, cache = Stub(), tmp_path / "cache"
    _run(stub, source, cache)
    cell, done = _run(stub, source, cache, episodes=7)
    assert done == "evaluated" and len(stub.trained) == 1 and stub.evaluated[-1][1] == 7
    assert cell["eval"]["episodes"] == 7


def test_changed_defaults_or_data_retrain(source, tmp_path, monkeypatch):
    stub, cache = Stub(), tmp_path / "cache"
    _run(stub, source, cache)
    from demokit.rl import hyperparams

    monkeypatch.setitem(hyperparams.TUNED, "CartPole-v1", {**hyperparams.TUNED["CartPole-v1"],
                                                           "bc": {"hidden_sizes": (32, 32)}})
    _, done = _run(stub, source, cache)
    assert done == "trained" and len(stub.trained) == 2
    monkeypatch.undo()
    _, done = _run(stub, source, cache)  # back to the first settings: the cell (now of the 32x32 run) retrains
    assert done == "trained" and len(stub.trained) == 3
    other = il_data.write_cartpole(tmp_path / "other.h5", 3, seed=5)  # another reference dataset
    _, done = _run(stub, other, cache)
    assert done == "trained" and len(stub.trained) == 4


def test_missing_policy_keeps_the_figures_until_a_reevaluation_needs_it(source, tmp_path):
    """Cells are committed without their policies: a fresh checkout keeps the recorded figures; evaluating
    on another number of episodes needs the policy, so the cell retrains; a damaged cell retrains."""
    stub, cache = Stub(), tmp_path / "cache"
    cell, _ = _run(stub, source, cache)
    (cache / cell["policy"]).unlink()
    assert _run(stub, source, cache)[1] == "cached" and len(stub.trained) == 1
    assert _run(stub, source, cache, episodes=7)[1] == "trained" and len(stub.trained) == 2
    (cache / "cells" / "CartPole-v1-bc-k2-s0.json").write_text("{not json")
    assert _run(stub, source, cache)[1] == "trained" and len(stub.trained) == 3


def test_table_rows_and_missing_dataset_is_skipped(tmp_path, capsys, monkeypatch):
    cells = [{"env_id": "Hopper-v5", "method": "bc", "k": 4, "seed": s, "eval": {"mean_return": r},
              "train": {"env_steps": 0, "wall_s": 60.0}} for s, r in ((0, 910.0), (1, 1010.0))]
    text = table.table(cells, {"Hopper-v5": (1010.0, 10.0)}, ["Hopper-v5"], [4, 11], ["bc", "dagger"])
    rows = text.splitlines()
    assert len(rows) == 4 and "0.95 ± 0.05 (n=2)" in rows[2] and "0 / 60 s" in rows[2]
    assert rows[3].count(" - ") >= 2 and "0.93" in rows[2]  # no cells for k=11; imitation's published figure
    monkeypatch.setattr(table, "dataset_path", lambda env_id: tmp_path / "absent.h5")
    assert table.main(["--envs", "Walker2d-v5", "--cache", str(tmp_path / "c")]) == 0
    assert "Walker2d-v5: skipped" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    assert table.main(["--methods", "bc,airl"]) == 2
    assert capsys.readouterr().err.startswith("error: --methods")


def test_dagger_cells_depend_on_every_bc_default():
    """DAgger's learner is BC at the env's defaults: any change of them (e.g. the activation) retrains its cells."""
    assert table.dagger_settings("Hopper-v5")["bc"] == table.bc_settings("Hopper-v5")
    assert table.bc_settings("Hopper-v5")["activation"] == "relu"
    # DAgger's lr follows BC's for the env (unset in DAggerConfig): the key as before where the row has no lr
    assert table.dagger_settings("Hopper-v5")["lr"] == 1e-3
    assert table.dagger_settings("Walker2d-v5")["lr"] == table.bc_settings("Walker2d-v5")["lr"] < 1e-3


def test_a_new_bc_option_at_its_neutral_value_keeps_the_cells(source, tmp_path, monkeypatch):
    """obs_noise 0 trains as before the option existed: left out of the settings, so old cells stay valid;
    a row that sets it retrains them."""
    assert not set(table.NEW_BC_OPTIONS) & set(table.bc_settings("CartPole-v1"))
    stub, cache = Stub(), tmp_path / "cache"
    _run(stub, source, cache)
    from demokit.rl import hyperparams

    monkeypatch.setitem(hyperparams.TUNED, "CartPole-v1", {**hyperparams.TUNED["CartPole-v1"],
                                                           "bc": {"obs_noise": 0.0}})
    assert _run(stub, source, cache)[1] == "cached"
    monkeypatch.setitem(hyperparams.TUNED, "CartPole-v1", {**hyperparams.TUNED["CartPole-v1"],
                                                           "bc": {"obs_noise": 0.2}})
    assert table.bc_settings("CartPole-v1")["obs_noise"] == 0.2
    assert _run(stub, source, cache)[1] == "trained" and len(stub.trained) == 2


def test_a_new_learner_option_at_its_neutral_value_keeps_the_gail_cells(monkeypatch):
    """stop_margin_se 0 stops as before the option existed: left out of GAIL's settings key (the cached cells stay
    valid); a row that sets it changes the key, so its cells retrain."""
    from demokit.reward_models import gail

    before = table.gail_settings("HalfCheetah-v5", "ppo", None)
    assert not set(table.NEW_RL_OPTIONS) & set(before["rl"])
    row = gail.GAIL_PIPELINE_DEFAULTS["HalfCheetah-v5"]["ppo"]
    monkeypatch.setitem(row, "rl", {**row["rl"], "stop_margin_se": 0.0})
    assert table.gail_settings("HalfCheetah-v5", "ppo", None) == before
    monkeypatch.setitem(row, "rl", {**row["rl"], "stop_margin_se": 1.0})
    assert table.gail_settings("HalfCheetah-v5", "ppo", None)["rl"]["stop_margin_se"] == 1.0


def test_a_cache_copied_elsewhere_finds_its_policies(source, tmp_path):
    """Cells name their policy relative to the cache folder, so a cache copied to another checkout finds it;
    an older cell's absolute path that is gone means the policy beside the cell."""
    import shutil

    stub, cache = Stub(), tmp_path / "cache"
    _run(stub, source, cache)
    cell_path = cache / "cells" / "CartPole-v1-bc-k2-s0.json"
    assert json.loads(cell_path.read_text())["policy"] == "policies/CartPole-v1-bc-k2-s0.pt"
    shutil.copytree(cache, tmp_path / "copy")
    shutil.rmtree(cache)
    cell, done = _run(stub, source, tmp_path / "copy")
    assert done == "cached" and len(stub.trained) == 1 and cell["policy"] == "policies/CartPole-v1-bc-k2-s0.pt"
    copied = tmp_path / "copy" / "cells" / "CartPole-v1-bc-k2-s0.json"
    old = {**json.loads(copied.read_text()), "policy": str(tmp_path / "gone" / "CartPole-v1-bc-k2-s0.pt")}
    copied.write_text(json.dumps(old))
    cell, done = _run(stub, source, tmp_path / "copy")
    assert done == "cached" and len(stub.trained) == 1 and cell["policy"] == "policies/CartPole-v1-bc-k2-s0.pt"


def test_gail_curve_log_writes_each_new_quick_evaluation_once(tmp_path):
    log = tmp_path / "curve.jsonl"
    progress = table._eval_logger(log, "Hopper-v5-gail-ppo-k4-s0", 0.0)
    nan = float("nan")
    for steps, ev in ((1024, nan), (20_480, 300.0), (21_504, 300.0), (40_960, 512.5)):  # none yet, new, same, new
        progress({"env_steps": steps, "eval_return": ev, "episode_return": 10.0, "reward_model/d_expert": 0.75})
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["env_steps"], r["eval_return"], r["d_expert"]) for r in rows] == [(20_480, 300.0, 0.75),
                                                                                (40_960, 512.5, 0.75)]
    assert all(r["cell"] == "Hopper-v5-gail-ppo-k4-s0" for r in rows)


def test_gail_sac_resume_point_continues_only_a_state_of_the_same_settings(tmp_path):
    state, want = tmp_path / "partial" / "Hopper-v5-gail-sac-k4-s0.state.pt", {"method": "gail-sac", "data": "abc"}
    note = state.with_suffix(".json")
    state.parent.mkdir()
    assert table.resume_point(state, want) == (0.0, 1)  # nothing saved: a fresh start
    state.write_bytes(b"state")
    table.write_json(note, {"settings": want, "env_steps": 50_000, "segments": 1, "wall_s": 300.5})
    assert table.resume_point(state, want) == (300.5, 2) and state.exists()
    assert table.resume_point(state, {**want, "data": "def"}) == (0.0, 1)  # other settings: started over
    assert not state.exists() and not note.exists()


def test_gail_sac_state_notes_follow_each_save(tmp_path):
    """The note beside a training state is written right after run_irl saved it (and only then), with the wall
    time of the earlier segments added; the progress function given still sees every report."""
    state, want = tmp_path / "x.state.pt", {"method": "gail-sac"}
    seen: list[int] = []
    notes = table._state_notes(lambda info: seen.append(int(info["env_steps"])), state, want, t0=0.0, before=100.0,
                               segments=2)
    notes({"env_steps": 250})
    assert not state.with_suffix(".json").exists()
    state.write_bytes(b"saved at 500")
    notes({"env_steps": 500})
    note = json.loads(state.with_suffix(".json").read_text())
    assert (note["env_steps"], note["segments"], note["settings"]) == (500, 2, want) and note["wall_s"] > 100.0
    notes({"env_steps": 750})  # not saved again: the note still says 500
    assert json.loads(state.with_suffix(".json").read_text())["env_steps"] == 500 and seen == [250, 500, 750]
