"""benchmarks/bench_gail_hopper.py: one system's row from its run and checks, and the comparison in words."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("benchmarks_bench_gail_hopper", REPO / "benchmarks" / "bench_gail_hopper.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

EXPERT, RANDOM = 1010.0, 10.0  # normalised = (return - 10) / 1000


def _run(result: dict | None, wall: float, cpu: float, reached: bool) -> dict:
    return {"result": result, "finished": result is not None, "reached": reached, "wall_s": wall, "cpu_s": cpu}


def test_rows_and_wall_ratio_when_both_reach_the_goal() -> None:
    d = bench.summarise("demokit", _run({"mean_return": 960.0, "std_return": 5.0, "env_steps": 400_000}, 400.0, 160.0,
                                        True), [{"env_steps": 400_000, "eval_return": 950.0}], EXPERT, RANDOM)
    p = bench.summarise("imitation", _run({"mean_return": 930.0, "env_steps": 800_000}, 1000.0, 480.0, True),
                        [{"env_steps": 800_000, "mean_return": 940.0}], EXPERT, RANDOM)
    assert d["normalised"] == pytest.approx(0.95) and p["best_check"] == 940.0
    assert d["cpu_ms_per_step"] == pytest.approx(0.4) and p["steps_per_s"] == pytest.approx(800.0)
    text = bench.verdict(d, p)
    assert "0.40x (CPU 0.33x)" in text and "per env step demokit / imitation: wall 0.80x, CPU 0.67x" in text


def test_a_stopped_run_reports_its_last_check_and_bounds_the_ratio() -> None:
    d = bench.summarise("demokit", _run({"mean_return": 960.0, "env_steps": 500_000}, 500.0, 200.0, True), [],
                        EXPERT, RANDOM)
    p = bench.summarise("imitation", _run(None, 2000.0, 900.0, False),
                        [{"env_steps": 600_000, "mean_return": 300.0}], EXPERT, RANDOM)
    assert p["env_steps"] == 600_000 and p["mean_return"] is None and p["normalised"] is None
    assert "imitation did not reach 0.9" in bench.verdict(d, p) and "< 0.25x (an upper bound)" in bench.verdict(d, p)
    stopped = bench.summarise("demokit", _run(None, 500.0, 200.0, False), [{"env_steps": 90_000, "eval_return": 5.0}],
                              EXPERT, RANDOM)
    assert "before the wall cap: no ratio" in bench.verdict(stopped, p)


def test_a_stopped_runs_per_step_costs_are_its_last_checks() -> None:
    """The steps a stopped run took after its last check are not counted, so neither is their time."""
    p = bench.summarise("imitation", _run(None, 2000.0, 900.0, False),
                        [{"env_steps": 300_000, "mean_return": 250.0, "wall_s": 700.0, "cpu_s": 280.0},
                         {"env_steps": 600_000, "mean_return": 300.0, "wall_s": 1500.0, "cpu_s": 600.0}], EXPERT, RANDOM)
    assert p["steps_per_s"] == pytest.approx(400.0) and p["cpu_ms_per_step"] == pytest.approx(1.0)
    assert p["per_step_of"] == "its last check" and (p["wall_s"], p["cpu_s"]) == (2000.0, 900.0)
    untimed = bench.summarise("imitation", _run(None, 2000.0, 900.0, False),
                              [{"env_steps": 600_000, "mean_return": 300.0}], EXPERT, RANDOM)
    assert untimed["per_step_of"] == "the whole process" and untimed["cpu_ms_per_step"] == pytest.approx(1.5)
    d = bench.summarise("demokit", _run({"mean_return": 960.0, "env_steps": 500_000}, 500.0, 200.0, True),
                        [{"env_steps": 500_000, "eval_return": 950.0, "wall_s": 480.0, "cpu_s": 190.0}], EXPERT, RANDOM)
    assert d["per_step_of"] == "the whole process" and d["cpu_ms_per_step"] == pytest.approx(0.4)  # it finished
    assert "per env step demokit / imitation: wall 0.40x, CPU 0.40x" in bench.verdict(d, p)


def test_both_commands_share_the_parents_normaliser(tmp_path) -> None:
    """demokit's timed process is given the random return the parent measured (its 50 random episodes are not
    run inside the timed run); imitation's gets the threshold made from it; both use the same check interval."""
    cmds = bench.commands(1, npz=tmp_path / "d.npz", threshold=2722.9, peer_steps=2_000_000, log_dir=tmp_path,
                          random_return=14.774108161786154)
    dk, im = cmds["demokit"], cmds["imitation"]
    assert float(dk[dk.index("--random-return") + 1]) == 14.774108161786154
    assert im[im.index("--threshold") + 1] == "2722.900"
    assert dk[dk.index("--eval-every") + 1] == im[im.index("--eval-every") + 1] == str(bench.EVERY)
    assert "--random-return" not in bench.commands(1, npz=tmp_path / "d.npz", threshold=1.0, peer_steps=1,
                                                   log_dir=tmp_path)["demokit"]
