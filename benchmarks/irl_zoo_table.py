"""The reward-model zoo from 10 expert episodes per env: return, normalised score, env steps, wall time.

Every registered reward model of demokit's zoo runs through ``demokit irl`` (the whole
process: start-up, evaluations and the checkpoint included) at its defaults (the per-env
defaults each model declares in ``pipeline_defaults`` / ``default_learners`` included),
``--device cpu``, one torch thread, stopping at the env's goal as `demokit gail` does
(CartPole-v1 475, Acrobot-v1 -100, MountainCar-v0 -110, Pendulum-v1 -200), or at
``--cap`` env steps (default: the pipeline's own budget). Each policy is then evaluated on
100 fresh deterministic episodes (``demokit eval --episodes 100 --seed 5000 --dataset
DATA``): mean return and the normalised score ``(return - random) / (expert - random)``
(expert: the dataset's mean return; random: a uniform policy on the same episode seeds).

Data: ``datasets/<env>-expert.h5`` (10 greedy episodes of the env's reference expert,
``demokit collect --episodes 10 --seed 0``; see datasets/README.md). ``sqil`` runs with
the env's off-policy learner (DQN; SAC on Box actions), AIRL / PWIL / RED / D-REX with
their default learner. T-REX needs ranked demonstrations: it runs on a ranked dataset
made here per env (``make_ranked``: a BC policy of the env's reference data rolled out
with epsilon-greedy noise 1.0, 0.75, 0.5, 0.25, 0.0, two episodes each, every step's
``rank`` extra = -epsilon), or on ``--ranked FILE`` (for the env it records); its score
is against the reference data's expert. ``--ranked-policy CKPT`` rolls out that checkpoint
(e.g. the env's expert: noise-injected expert rollouts) instead of BC for the env it records,
and ``--rank-by return`` ranks the made episodes by their env return instead of -epsilon
(these cells are cached under their own keys).

    .venv/bin/python benchmarks/irl_zoo_table.py [--envs CartPole-v1 Acrobot-v1 ...] [--models airl sqil ...]
        [--seeds 0 1 2] [--cap N] [--ranked FILE] [--cache FILE]

Prints one JSON line per run and a markdown table (median over seeds) for docs/benchmarks.md.
Runs are cached per cell (env, model, seed, cap) in ``--cache``: a rerun adds missing cells.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "datasets" / "cartpole-v1-expert.h5"
MODELS = ("sqil", "red", "pwil", "airl", "drex", "trex")
ENVS = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1")
EVAL = {"episodes": 100, "seed": 5000}


def dataset_of(env_id: str) -> Path:
    return ROOT / "datasets" / f"{env_id.lower()}-expert.h5"


def _cli(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "demokit", *args], capture_output=True, text=True, env=env, cwd=cwd)
    return proc, time.perf_counter() - start


def run(model: str, seed: int, data: Path, workdir: Path, cap: int | None = None, reference: Path | None = None) -> dict:
    """One ``demokit irl`` run at the defaults, then a 100-episode evaluation of its policy (score against
    ``reference``'s expert return, default ``data``'s)."""
    out = workdir / f"{data.stem}-{model}-{seed}.pt"
    proc, wall = _cli(["irl", "--reward-model", model, "--expert", str(data), "--seed", str(seed), "--device", "cpu",
                       "--out", str(out), "--run-dir", str(workdir / f"run-{data.stem}-{model}-{seed}"), "--json",
                       "--force", "--overwrite", *(["--timesteps", str(cap)] if cap else [])], workdir)
    if proc.returncode != 0:
        return {"model": model, "seed": seed, "error": proc.stderr.strip().splitlines()[-1:], "process_s": wall}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    ev_proc, _ = _cli(["eval", "--policy", str(out), "--episodes", str(EVAL["episodes"]), "--seed", str(EVAL["seed"]),
                       "--dataset", str(reference or data), "--json"], workdir)
    ev = json.loads(ev_proc.stdout.strip().splitlines()[-1])
    return {"model": model, "seed": seed, "algo": result["algo"], "mean_return": result["mean_return"],
            "env_steps": result["env_steps"], "wall_s": round(result["wall_s"], 1), "process_s": round(wall, 1),
            "converged": result["converged"], "eval100": round(ev["mean_return"], 1),
            "eval100_std": round(ev["std_return"], 1), "score": round(ev["normalised_score"], 3),
            "expert": round(ev["expert_return"], 1), "random": round(ev["random_return"], 1),
            "loadavg_1m": round(os.getloadavg()[0], 1), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def make_ranked(path: Path, env_id: str = "CartPole-v1", seed: int = 0, policy_path: Path | None = None,
                rank_by: str = "noise") -> Path:
    """Ten episodes of a policy at five noise levels: a BC policy trained on the env's reference data, or the
    checkpoint ``policy_path`` (e.g. the env's expert: noise-injected expert rollouts); ranked by the noise
    (``rank_by`` "noise": rank = -epsilon) or by each episode's env return ("return")."""
    import numpy as np
    from gymnasium import spaces

    from demokit.data import DatasetWriter, Episode
    from demokit.envs import make_env
    from demokit.il import train_bc
    from demokit.policies.checkpoint import load_policy

    if policy_path is None:
        policy = train_bc(str(dataset_of(env_id)), {"epochs": 30, "eval_episodes": 0, "seed": seed,
                                                    "device": "cpu"}).policy
        source = "BC"
    else:
        policy, source = load_policy(policy_path), f"the policy {policy_path}"
    env = make_env(env_id)
    space = env.action_space
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, observation_space=env.observation_space, action_space=space, env_id=env_id,
                       provenance={"policy": f"{source} + epsilon-greedy noise (rank = "
                                             f"{'-epsilon' if rank_by == 'noise' else 'the episode return'})"}) as w:
        for k, eps in enumerate((1.0, 1.0, 0.75, 0.75, 0.5, 0.5, 0.25, 0.25, 0.0, 0.0)):
            obs, _ = env.reset(seed=seed + k)
            rows, acts, rews, done = [], [], [], (False, False)
            while not any(done):
                if rng.random() < eps:  # a uniform action (Discrete: as many draws as CartPole's table used)
                    a = int(rng.integers(space.n)) if isinstance(space, spaces.Discrete) else \
                        rng.uniform(space.low, space.high).astype(space.dtype)
                else:
                    a = policy.act(np.asarray(obs)[None], deterministic=True)[0]
                rows.append(obs), acts.append(a)
                obs, r, term, trunc, _ = env.step(a)
                rews.append(r)
                done = (term, trunc)
            flags = np.zeros(len(rows), bool)
            te, tr = flags.copy(), flags.copy()
            te[-1], tr[-1] = done
            w.add_episode(Episode(observations=np.asarray(rows, np.float32), actions=np.asarray(acts),
                                  rewards=np.asarray(rews), terminated=te, truncated=tr,
                                  final_observation=np.asarray(obs, np.float32)[None],
                                  extras={"rank": np.full(len(rows), -eps if rank_by == "noise" else sum(rews),
                                                          np.float32)}, seed=seed + k))
    env.close()
    return path


def ranked_summary(path: Path) -> dict:
    """Each ranked episode's rank and env return, and Spearman's correlation of the two (does the order mean
    anything for the task?)."""
    import numpy as np

    from demokit.data.dataset import load_dataset

    def ranked(x: list[float]) -> np.ndarray:  # ranks, ties at their average rank
        x = np.asarray(x)
        r = np.empty(len(x))
        r[np.argsort(x, kind="stable")] = np.arange(len(x))
        for v in np.unique(x):
            r[x == v] = r[x == v].mean()
        return r

    ds = load_dataset(path)
    ranks = [float(ep.extras["rank"][0]) for ep in ds.iter_episodes()]
    returns = [float(np.sum(ep.rewards)) for ep in ds.iter_episodes()]
    return {"rank": ranks, "return": [round(r, 1) for r in returns],
            "spearman": round(float(np.corrcoef(ranked(ranks), ranked(returns))[0, 1]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--cap", type=int, default=None, help="env-step budget of each run (default: the pipeline's)")
    parser.add_argument("--ranked", type=Path, default=None, help="ranked dataset for trex (for the env it records)")
    parser.add_argument("--ranked-policy", type=Path, default=None,
                        help="a policy checkpoint (e.g. the env's expert) whose noisy rollouts make trex's ranked "
                             "data for the env it records (default: a BC policy of the reference data)")
    parser.add_argument("--rank-by", choices=("noise", "return"), default="noise",
                        help="rank of the made episodes: -epsilon (default) or the episode's env return")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "demokit-irl-zoo.json")
    args = parser.parse_args()
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}

    ranked: dict[str, Path] = {}
    if args.ranked is not None:
        from demokit.data.dataset import load_dataset
        ranked[load_dataset(args.ranked).env_id] = args.ranked
    sources: dict[str, Path] = {}
    if args.ranked_policy is not None:
        from demokit.policies.checkpoint import load_checkpoint
        sources[load_checkpoint(args.ranked_policy).env_id] = args.ranked_policy

    def key(env: str, model: str, seed: int) -> str:
        made = model == "trex" and (env in sources or args.rank_by != "noise")  # another ranked dataset
        tail = f"/ranked-{sources[env].stem if env in sources else 'bc'}-{args.rank_by}" if made else ""
        return f"{env}/{model}/{seed}/cap{args.cap}{tail}"

    with tempfile.TemporaryDirectory() as tmp:
        for env in args.envs:
            for model in args.models:
                data = dataset_of(env)
                if model == "trex":
                    if env not in ranked and any(key(env, model, s) not in cache for s in args.seeds):
                        ranked[env] = make_ranked(Path(tmp) / f"{env.lower()}-ranked.h5", env,
                                                  policy_path=sources.get(env), rank_by=args.rank_by)
                        print(json.dumps({"env": env, "ranked_data": ranked_summary(ranked[env])}), flush=True)
                    data = ranked.get(env, data)
                for seed in args.seeds:
                    if key(env, model, seed) not in cache:
                        cache[key(env, model, seed)] = run(model, seed, data, Path(tmp), args.cap, dataset_of(env))
                        args.cache.write_text(json.dumps(cache, indent=1))
                    print(json.dumps({"env": env, **cache[key(env, model, seed)]}), flush=True)
    print("\n| env | model | learner | seeds | eval return (median, min) | score (median) | env steps (median) "
          "| wall s (median) | reached goal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for env in args.envs:
        for model in args.models:
            rows = [cache[key(env, model, s)] for s in args.seeds if key(env, model, s) in cache]
            ok = [r for r in rows if "error" not in r]
            if not ok:
                why = rows[0]["error"][0] if rows and rows[0]["error"] else "?"
                print(f"| {env} | {model} | - | {len(rows)} | refused: {why} | - | - | - | - |")
                continue
            med = lambda k: statistics.median(r[k] for r in ok)  # noqa: E731
            print(f"| {env} | {model} | {ok[0]['algo'].split('-', 1)[1]} | {len(ok)} | {med('eval100'):.1f}, "
                  f"{min(r['eval100'] for r in ok):.1f} | {med('score'):.2f} | {med('env_steps'):.0f} | "
                  f"{med('wall_s'):.1f} | {sum(r['converged'] for r in ok)}/{len(ok)} |")


if __name__ == "__main__":
    main()
