"""Issue 11's MuJoCo table: BC, DAgger, GAIL-PPO and GAIL-SAC on Hopper, HalfCheetah and Walker2d (v5).

For each env, 4 / 11 / 18 / 25 expert trajectories (the first k episodes of the env's
25-episode reference dataset ``datasets/<env>-expert.h5``: the SAC expert, greedy) and
seeds 0-2, each cell trains one method at demokit's defaults for the env:

* ``bc``: ``train_bc`` on the k trajectories (the env's tuned BC row: MSE, 256x256);
* ``dagger``: ``train_dagger`` with the k trajectories as its round 0 (``demonstrations``) and the
  SAC expert ``experts/<env>-sac.pt`` (git-ignored; ``--experts`` names another folder) as the
  oracle that labels the learner's states, DAgger's default rounds / episodes per round;
* ``gail-ppo``, ``gail-sac``: ``run_irl`` on the k trajectories with that learner, GAIL's defaults
  for the env (whatever the GAIL defaults are when the cell runs: a changed default retrains the
  cell), GAIL's own budget and stop value for the env (1M env steps on Hopper, the issue's budget)
  unless ``--gail-steps`` gives one.

Each final policy is evaluated on ``EVAL_EPISODES`` (50) fresh deterministic episodes (env seeds
``50_000 + 100 * seed + i``) and reported as the normalised score ``(return - random) /
(expert - random)``: expert = the mean return of the reference dataset's 25 episodes, random = a
uniformly random policy on the seed-0 evaluation episodes. Each cell records its env steps
(BC: none; DAgger: its rollouts; GAIL: the learner's) and training wall time (without the final
evaluation).

Cache: one JSON per cell under ``benchmarks/results/mujoco/cells/`` (committed; the policies and the
k-trajectory datasets beside it are not: a cell without its policy keeps its figures, and only a
re-evaluation on another number of episodes retrains it). A re-run trains only missing cells and cells whose settings changed (the
method's resolved defaults, the reference dataset's content, the expert's content, the GAIL budget),
and re-evaluates cells evaluated on another number of episodes; ``--fresh`` retrains the selected
cells. Every cell is written as soon as it is done (atomically), so a stopped run loses one cell at most;
a GAIL-SAC cell (about an hour of a core) also saves its whole training state every ``STATE_EVERY`` env
steps under ``<cache>/partial/`` and, run again with the same settings, goes on from there (its record
counts the wall time of every segment and says how many there were).
An env whose reference dataset does not exist yet (Walker2d-v5 until
``scripts/make_mujoco_experts.sh`` writes it) is skipped with a message; so are DAgger cells without
the env's expert checkpoint.

The printed markdown table shows mean ± std over the seeds present (n = seeds) of the normalised
score per method, the median env steps and wall time, next to imitation's published normalised
scores (seals MuJoCo, /work/shared/REFERENCES.md). Env versions differ: demokit runs Gymnasium's
MuJoCo v5 envs, the GAIL paper used the v1 envs of 2016 (TRPO experts) and imitation the seals
variants (fixed episode lengths): the figures are context, not a like-for-like comparison.

    .venv/bin/python benchmarks/mujoco_table.py [--envs Hopper-v5,HalfCheetah-v5,Walker2d-v5]
        [--methods bc,dagger,gail-ppo,gail-sac] [--counts 4 11 18 25] [--seeds 0 1 2]
        [--gail-steps 1000000] [--experts DIR] [--cache DIR] [--fresh] [--table-only] [--markdown FILE]
        [--log FILE]

``--log FILE`` appends each GAIL cell's quick evaluations (one JSON line each: env steps, deterministic
return, the discriminator's mean output on expert / policy data) to FILE: the learning curve of a cell.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

ENVS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")
METHODS = ("bc", "dagger", "gail-ppo", "gail-sac")
COUNTS = (4, 11, 18, 25)
SEEDS = (0, 1, 2)
#: fresh deterministic episodes each final policy is evaluated on
EVAL_EPISODES = 50
CACHE = REPO / "benchmarks" / "results" / "mujoco"
#: imitation v1.0's published normalised scores on seals MuJoCo (REFERENCES.md): means over its five tasks,
#: and its one per-task figure there (GAIL on seals Hopper)
IMITATION = {"bc": "0.93", "dagger": "0.995", "gail": "0.94"}
IMITATION_TASK = {("Hopper-v5", "gail"): "0.935 ± 0.057 (Hopper)"}
GOAL = {"bc": 0.9, "gail-ppo": 0.95, "gail-sac": 0.95}


def dataset_path(env_id: str) -> Path:
    """The env's 25-episode reference dataset (``datasets/<env lower-cased>-expert.h5``)."""
    return REPO / "datasets" / f"{env_id.lower()}-expert.h5"


def expert_path(env_id: str, experts: Path) -> Path:
    return experts / f"{env_id}-sac.pt"


def short_sha(path: Path) -> str:
    from demokit.policies import file_sha256

    return file_sha256(path)[:12]


#: env steps between a GAIL-SAC cell's saved training states (~2-3 min of a core on Hopper; a save 0.25-2 s)
STATE_EVERY = 25_000


def write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` to ``path`` atomically (a stopped run never leaves half a cell)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def subset(env_id: str, k: int, source: Path, cache: Path) -> Path:
    """The first ``k`` episodes of ``source`` as their own dataset (cached per source content)."""
    from bench_bc import first_episodes, write_episodes

    out = cache / "data" / short_sha(source) / f"{env_id}-k{k}.h5"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        write_episodes(tmp, env_id, first_episodes(source, k))
        os.replace(tmp, out)
    return out


# -- what a cell was computed with: any change retrains it ---------------------------------

def bc_settings(env_id: str, row_name: str = "bc") -> dict[str, Any]:
    """BC's resolved defaults for ``env_id`` (tuned row over the generic defaults), seed and paths left out;
    ``row_name`` "dagger": those of DAgger's learner (the env's "dagger" row where it has one)."""
    from demokit.config import to_dict
    from demokit.il.bc import BCConfig, resolve_bc_config

    cfg, _ = resolve_bc_config(BCConfig(), env_id, row_name=row_name)
    return {k: v for k, v in to_dict(cfg).items() if k not in ("seed", "out", "force", "device", "env_id")
            and not (k in NEW_BC_OPTIONS and v == NEW_BC_OPTIONS[k])}


#: BC options added after cells were cached, with the value that trains as before they existed: left out of a
#: cell's settings at that value, so that the cells computed before the option stay valid
NEW_BC_OPTIONS: dict[str, Any] = {"obs_noise": 0.0, "weight_decay": 0.0, "lr_schedule": "constant", "aux_state": 0.0,
                                   "state_head": "none", "state_head_fit": "end_to_end",
                                   "keep_best": False, "ensemble": 1}


def dagger_settings(env_id: str) -> dict[str, Any]:
    from demokit.config import to_dict
    from demokit.il.dagger import DAggerConfig

    bc = bc_settings(env_id, "dagger")
    own = {k: v for k, v in to_dict(DAggerConfig()).items()
           if k in ("rounds", "episodes_per_round", "beta_schedule", "epochs", "batch_size", "lr")}
    own["lr"] = bc["lr"] if own["lr"] is None else own["lr"]  # unset: BC's for the env (the cells' key as before)
    return {**own, "bc": bc}  # its learner is BC at the env's defaults for DAgger


def gail_settings(env_id: str, algo: str, gail_steps: int | None) -> dict[str, Any]:
    """GAIL's defaults for (env, learner) as run_irl resolves them, the budget included (``gail_steps``
    None: GAIL's own)."""
    from demokit.config import to_dict
    from demokit.pipelines.reward_model import irl_config, irl_defaults, irl_rl_config
    from demokit.reward_models import GailRewardModel
    from demokit.rl.registry import get_learner

    cfg = irl_config({"env_id": env_id, "expert_data_path": "-", "total_timesteps": gail_steps})
    rl = to_dict(irl_rl_config(get_learner(algo), env_id, cfg, seed=0))
    rl = {k: v for k, v in rl.items() if k not in ("seed", "device")
          and not (k in NEW_RL_OPTIONS and v == NEW_RL_OPTIONS[k])}
    return {"rl": rl, "reward_model": irl_defaults(GailRewardModel, env_id, algo, "reward_model"),
            "reward_model_config": cfg.reward_model_config(), "gail_steps": gail_steps}


#: learner options added after GAIL cells were cached, with the value that trains as before they existed (as
#: NEW_BC_OPTIONS)
NEW_RL_OPTIONS: dict[str, Any] = {"stop_margin_se": 0.0}


def settings(method: str, env_id: str, *, source: Path, expert: Path | None,
             gail_steps: int | None) -> dict[str, Any]:
    """Everything a cell of ``method`` depends on besides (env, k, seed)."""
    base: dict[str, Any] = {"method": method, "data": short_sha(source)}
    if method == "bc":
        return {**base, "bc": bc_settings(env_id)}
    if method == "dagger":
        assert expert is not None
        return {**base, "dagger": dagger_settings(env_id), "expert": short_sha(expert)}
    return {**base, "gail": gail_settings(env_id, method.removeprefix("gail-"), gail_steps)}


def cell_name(env_id: str, method: str, k: int, seed: int) -> str:
    return f"{env_id}-{method}-k{k}-s{seed}"


def cached_cell(path: Path, want: dict[str, Any], *, fresh: bool = False,
                episodes: int | None = None) -> dict[str, Any] | None:
    """The cached cell at ``path`` if it was trained with the settings ``want`` and either its policy exists
    or its evaluation is already on ``episodes`` episodes (the cells are committed, their policies are not:
    a fresh checkout keeps the recorded figures; only a re-evaluation needs the policy)."""
    if fresh or not path.exists():
        return None
    try:
        cell = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if cell.get("settings") != json.loads(json.dumps(want)):  # compare as JSON (tuples are lists there)
        return None
    policy = policy_file(path, cell.get("policy", ""))
    evaluated = episodes is not None and cell.get("eval", {}).get("episodes") == episodes
    if not (policy.is_file() or evaluated):
        return None
    return {**cell, "policy": f"policies/{policy.name}"}


def policy_file(cell_path: Path, recorded: str) -> Path:
    """The policy of the cell at ``cell_path``: ``recorded`` is relative to the cache folder (cells written
    before that named it by an absolute path: the policy beside the cell when that path is gone)."""
    cache = cell_path.parent.parent
    p = Path(recorded)
    if not p.is_absolute():
        return cache / p
    return p if p.is_file() else cache / "policies" / p.name


# -- training and evaluation ----------------------------------------------------------------

def train(method: str, env_id: str, k: int, seed: int, *, data: Path, expert: Path | None, gail_steps: int | None,
          out: Path, log: Path | None = None, resume: tuple[Path, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train one cell's policy into ``out``; its env steps and wall time. ``log``: GAIL's quick evaluations
    (env steps, deterministic return, the latest training episode's env return, the discriminator's statistics,
    wall seconds) appended to that file as JSON lines. ``resume``: (training-state path, the cell's settings):
    GAIL-SAC saves its state there every STATE_EVERY env steps and continues from a state saved with the
    same settings."""
    t0 = time.perf_counter()
    before, segments = 0.0, 1
    if method == "bc":
        from demokit.il import train_bc

        res = train_bc(data, {"seed": seed, "out": str(out), "force": True, "device": "cpu", "eval_episodes": 0})
        info: dict[str, Any] = {"env_steps": 0, "epochs": res.epochs, "tuned_defaults": dict(res.tuned_defaults)}
    elif method == "dagger":
        from demokit.il.dagger import train_dagger

        res_d = train_dagger({"expert": str(expert), "env_id": env_id, "demonstrations": str(data), "seed": seed,
                              "out": str(out), "overwrite": True, "device": "cpu", "eval_episodes": 0})
        demo_steps = res_d.rounds[0]["dataset_steps"]
        info = {"env_steps": int(res_d.rounds[-1]["dataset_steps"] - demo_steps),
                "rounds": [{k2: r[k2] for k2 in ("round", "beta", "rollout_return", "dataset_steps")}
                           for r in res_d.rounds]}
    else:
        from demokit.pipelines.reward_model import run_irl

        budget = {"total_timesteps": gail_steps} if gail_steps is not None else {}
        if resume is not None:
            before, segments = resume_point(*resume)
        # the log's wall seconds count the earlier segments too
        progress = None if log is None else _eval_logger(log, cell_name(env_id, method, k, seed), t0 - before)
        state: dict[str, Any] = {}
        if resume is not None:
            progress = _state_notes(progress, *resume, t0, before, segments)
            state = {"state_path": resume[0], "state_every": STATE_EVERY}
        res_g = run_irl({"expert_data_path": str(data), "device": "cpu", **budget}, seed,
                        algo=method.removeprefix("gail-"), out=out, force=True, progress=progress, **state)
        info = {"env_steps": int(res_g.env_steps), "converged": res_g.converged, "algo": res_g.algo}
        if segments > 1:
            info["segments"] = segments
    return {**info, "wall_s": round(before + time.perf_counter() - t0, 1)}


def resume_point(state: Path, want: dict[str, Any]) -> tuple[float, int]:
    """(wall s already spent, this segment's number) for a cell's saved training state: (0, 1) without one;
    a state saved with other settings (its note beside it says which) is deleted and the cell starts over."""
    note = state.with_suffix(".json")
    if not state.exists():
        note.unlink(missing_ok=True)
        return 0.0, 1
    try:
        saved = json.loads(note.read_text())
    except (OSError, ValueError):
        saved = {}
    if saved.get("settings") != json.loads(json.dumps(want)):
        print(f"{state.name}: saved with other settings (or without its note): starting the cell over",
              file=sys.stderr, flush=True)
        state.unlink()
        note.unlink(missing_ok=True)
        return 0.0, 1
    print(f"{state.name}: continuing from {saved['env_steps']:,} env steps ({saved['wall_s']:.0f} s so far)",
          file=sys.stderr, flush=True)
    return float(saved["wall_s"]), int(saved.get("segments", 1)) + 1


def _state_notes(progress: Callable[[dict[str, float]], None] | None, state: Path, want: dict[str, Any], t0: float,
                 before: float, segments: int) -> Callable[[dict[str, float]], None]:
    """``progress`` plus a note beside the training state (settings, env steps, wall s so far) whenever
    run_irl has just saved it (its modification time changed; the learn loop saves before it reports)."""
    seen = [state.stat().st_mtime_ns if state.exists() else None]

    def notes(info: dict[str, float]) -> None:
        mtime = state.stat().st_mtime_ns if state.exists() else None
        if mtime is not None and mtime != seen[0]:
            seen[0] = mtime
            write_json(state.with_suffix(".json"), {"settings": want, "env_steps": int(info["env_steps"]),
                                                    "segments": segments,
                                                    "wall_s": round(before + time.perf_counter() - t0, 1)})
        if progress is not None:
            progress(info)

    return notes


def _eval_logger(log: Path, name: str, t0: float) -> Callable[[dict[str, float]], None]:
    """A run_irl progress function appending each new quick evaluation to ``log`` (one JSON line)."""
    last: list[float | None] = [None]

    def progress(info: dict[str, float]) -> None:
        ev = info.get("eval_return")
        if ev is None or ev != ev or ev == last[0]:  # none yet, NaN, or the same check reported again
            return
        last[0] = ev
        row = {"cell": name, "env_steps": int(info["env_steps"]), "eval_return": round(float(ev), 1),
               "train_return": info.get("episode_return"), "wall_s": round(time.perf_counter() - t0, 1),
               **{key.split("/")[-1]: round(float(v), 4) for key, v in info.items() if key.startswith("reward_model/")}}
        with open(log, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    return progress


def eval_seed(seed: int) -> int:
    return 50_000 + 100 * seed


def evaluate(policy_path: str, env_id: str, seed: int, episodes: int) -> dict[str, float]:
    from demokit.evaluation import evaluate_policy
    from demokit.policies import load_policy

    t0 = time.perf_counter()
    ev = evaluate_policy(load_policy(policy_path), env_id, episodes=episodes, seed=eval_seed(seed),
                         deterministic=True)
    return {"episodes": episodes, "seed": eval_seed(seed), "mean_return": ev.mean_return,
            "std_return": ev.std_return, "wall_s": round(time.perf_counter() - t0, 1)}


def reference_returns(env_id: str, source: Path, cache: Path, episodes: int) -> tuple[float, float]:
    """(expert, random) returns of the normalised score; the random one is measured once and cached."""
    from demokit.data import load_dataset

    expert = float(load_dataset(source).episode_returns.mean())
    path = cache / "random" / f"{env_id}.json"
    want = {"episodes": episodes, "seed": eval_seed(0)}
    if path.exists():
        got = json.loads(path.read_text())
        if {k: got.get(k) for k in want} == want:
            return expert, float(got["mean_return"])
    from demokit.envs import make_env
    from demokit.evaluation import evaluate_policy
    from demokit.policies.random import RandomPolicy

    env = make_env(env_id)
    policy = RandomPolicy(env.observation_space, env.action_space, seed=eval_seed(0))
    env.close()
    ret = evaluate_policy(policy, env_id, episodes=episodes, seed=eval_seed(0)).mean_return
    write_json(path, {**want, "mean_return": ret})
    return expert, float(ret)


def normalised(ret: float, expert: float, random: float) -> float:
    return (ret - random) / (expert - random)


def run_cell(env_id: str, method: str, k: int, seed: int, *, source: Path, expert: Path | None, cache: Path,
             gail_steps: int | None, episodes: int, fresh: bool,
             trainer: Callable[..., dict[str, Any]] = train,
             evaluator: Callable[[str, str, int, int], dict[str, float]] = evaluate) -> tuple[dict[str, Any], str]:
    """One cell, from the cache when its settings match (else trained), evaluated on ``episodes``
    episodes; (cell, what was done: "cached", "evaluated" or "trained")."""
    name = cell_name(env_id, method, k, seed)
    path = cache / "cells" / f"{name}.json"
    want = settings(method, env_id, source=source, expert=expert, gail_steps=gail_steps)
    cell = cached_cell(path, want, fresh=fresh, episodes=episodes)
    done = "cached"
    if cell is None:
        data = subset(env_id, k, source, cache)
        policy = cache / "policies" / f"{name}.pt"
        policy.parent.mkdir(parents=True, exist_ok=True)
        state = cache / "partial" / f"{name}.state.pt"  # GAIL-SAC's saved training state (see train)
        if fresh:
            state.unlink(missing_ok=True)
        resume = {"resume": (state, want)} if method == "gail-sac" else {}
        if resume:
            state.parent.mkdir(parents=True, exist_ok=True)
        cell = {"env_id": env_id, "method": method, "k": k, "seed": seed, "settings": want,
                "policy": f"policies/{policy.name}",  # relative to the cache folder
                "train": trainer(method, env_id, k, seed, data=data, expert=expert, gail_steps=gail_steps,
                                 out=policy, **resume)}
        write_json(path, cell)  # trained: kept even if the evaluation is stopped
        state.unlink(missing_ok=True)
        state.with_suffix(".json").unlink(missing_ok=True)
        done = "trained"
    if cell.get("eval", {}).get("episodes") != episodes:
        cell = {**cell, "eval": evaluator(str(policy_file(path, cell["policy"])), env_id, seed, episodes)}
        write_json(path, cell)
        done = "trained" if done == "trained" else "evaluated"
    return cell, done


# -- the table -------------------------------------------------------------------------------

def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f} (n={len(values)})"


def table(cells: list[dict[str, Any]], refs: dict[str, tuple[float, float]], envs: list[str], counts: list[int],
          methods: list[str]) -> str:
    """The markdown table of normalised scores (one row per env and k; one column group per method)."""
    by = {(c["env_id"], c["method"], c["k"]): [] for c in cells}
    for c in cells:
        by[(c["env_id"], c["method"], c["k"])].append(c)
    families = list(dict.fromkeys(m.split("-")[0] for m in methods))
    head = "| env (expert, random) | k | " + " | ".join(
        f"{m} | {m} steps / wall (median)" for m in methods) + \
        f" | imitation, seals, published ({' / '.join(families)}; means of its 5 tasks unless named) |"
    lines = [head, "|---|---:|" + "---:|---:|" * len(methods) + "---|"]
    for env_id in envs:
        if env_id not in refs:
            continue
        expert, random = refs[env_id]
        for k in counts:
            row = [f"{env_id} ({expert:.0f}, {random:.0f})", str(k)]
            for m in methods:
                got = by.get((env_id, m, k), [])
                scores = [normalised(c["eval"]["mean_return"], expert, random) for c in got]
                row.append(fmt(scores))
                if got:
                    steps = statistics.median(c["train"]["env_steps"] for c in got)
                    wall = statistics.median(c["train"]["wall_s"] for c in got)
                    row.append(f"{steps:,.0f} / {wall:.0f} s")
                else:
                    row.append("-")
            refs_txt = " / ".join(IMITATION_TASK.get((env_id, f), IMITATION[f]) for f in families)
            row.append(refs_txt)
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", default=",".join(ENVS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--gail-steps", type=int, default=None,
                    help="GAIL env-step budget per cell (default: GAIL's own for the env and learner)")
    ap.add_argument("--experts", type=Path, default=REPO / "experts", help="folder of <env>-sac.pt experts")
    ap.add_argument("--cache", type=Path, default=CACHE, help="folder of the cached cells")
    ap.add_argument("--episodes", type=int, default=EVAL_EPISODES, help="evaluation episodes per policy")
    ap.add_argument("--fresh", action="store_true", help="retrain the selected cells")
    ap.add_argument("--table-only", action="store_true", help="print the table of the cached cells; train nothing")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    ap.add_argument("--log", type=Path, default=None,
                    help="append GAIL's quick evaluations (one JSON line each, per trained cell) to this file")
    args = ap.parse_args(argv)
    envs = [e for e in args.envs.split(",") if e]
    methods = [m for m in args.methods.split(",") if m]
    for e in envs:
        if e not in ENVS:
            print(f"error: --envs: {e!r} is not one of {', '.join(ENVS)}", file=sys.stderr)
            return 2
    for m in methods:
        if m not in METHODS:
            print(f"error: --methods: {m!r} is not one of {', '.join(METHODS)}", file=sys.stderr)
            return 2
    if any(k < 1 or k > 25 for k in args.counts) or any(s < 0 for s in args.seeds) or args.episodes < 1:
        print("error: --counts must be in 1..25, --seeds >= 0, --episodes >= 1", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    cells: list[dict[str, Any]] = []
    refs: dict[str, tuple[float, float]] = {}
    for env_id in envs:
        source = dataset_path(env_id)
        if not source.exists():
            shown = source.relative_to(REPO) if source.is_relative_to(REPO) else source
            print(f"{env_id}: skipped: its reference dataset {shown} does not exist yet "
                  f"(scripts/make_mujoco_experts.sh {env_id} trains the expert and writes it)", file=sys.stderr)
            continue
        refs[env_id] = reference_returns(env_id, source, args.cache, args.episodes)
        expert = expert_path(env_id, args.experts)
        for method in methods:
            if method == "dagger" and not expert.exists() and not args.table_only:
                print(f"{env_id}: DAgger skipped: no expert {expert} (the oracle; copy or link the SAC expert "
                      f"there, or pass --experts DIR)", file=sys.stderr)
                continue
            for seed in args.seeds:
                for k in args.counts:
                    name = cell_name(env_id, method, k, seed)
                    path = args.cache / "cells" / f"{name}.json"
                    if args.table_only:
                        if path.exists():
                            cell = json.loads(path.read_text())
                            if "eval" in cell:
                                cells.append(cell)
                        continue
                    cell, done = run_cell(env_id, method, k, seed, source=source,
                                          expert=expert if method == "dagger" else None, cache=args.cache,
                                          gail_steps=args.gail_steps, episodes=args.episodes, fresh=args.fresh,
                                          trainer=partial(train, log=args.log))
                    cells.append(cell)
                    score = normalised(cell["eval"]["mean_return"], *refs[env_id])
                    print(f"{name}: {done}: return {cell['eval']['mean_return']:.1f}, normalised {score:.3f} "
                          f"({cell['train']['env_steps']:,} env steps, {cell['train']['wall_s']:.0f} s)",
                          file=sys.stderr, flush=True)
    text = table(cells, refs, envs, list(args.counts), methods)
    print(f"\nNormalised score (return - random) / (expert - random), mean ± std over seeds, {args.episodes} fresh "
          f"deterministic episodes per policy; expert = the reference dataset's mean return. Gymnasium MuJoCo v5 "
          f"here; the GAIL paper used the 2016 v1 envs, imitation the seals variants (env versions differ).\n")
    print(text)
    for note in sorted((args.cache / "partial").glob("*.state.json")):
        try:
            saved = json.loads(note.read_text())
            print(f"in progress: {note.name.removesuffix('.state.json')}: saved at {saved['env_steps']:,} env steps, "
                  f"{saved['wall_s']:.0f} s so far (running the cell again continues it)")
        except (OSError, ValueError, KeyError):
            continue
    if "| - |" in text:
        print(f"\n-: no cell record under {args.cache / 'cells'} (records are committed since session 18; "
              f"docs/benchmarks.md, 'The MuJoCo table', holds the figures of earlier sessions' cells)")
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


def run() -> int:
    """main() with Ctrl-C / SIGTERM as one line (a GAIL-SAC cell has saved its training state by then: the same
    command continues it)."""
    import signal

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return main()
    except KeyboardInterrupt as exc:
        print(f"stopped: {exc or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
