"""Shared helpers of the peer runners (imported by scripts in this folder only).

Runs under both peer interpreters: `.venv-imitation` (gymnasium 0.29, numpy 1.x)
and demokit's `.venv` (gymnasium 1.x, numpy 2.x), so it uses only numpy, torch and
the single-env gymnasium API that both versions share. See README.md for the
demonstration `.npz` layout this module reads.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

NPZ_LAYOUT_VERSION = 1
REQUIRED_KEYS = ("obs", "next_obs", "acts", "terminated", "truncated", "dones",
                 "episode_starts", "episode_lengths")


class PeerError(Exception):
    """A bad argument or input file: printed as one `error:` line, exit 2."""


def nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed for every random source (default 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads value (default 1: fastest for small MLPs on 2 cores)")
    parser.add_argument("--eval-episodes", type=nonneg_int, default=20,
                        help="deterministic evaluation episodes after training (default 20; 0 skips)")


def add_training_args(parser: argparse.ArgumentParser, *, total_timesteps: int) -> None:
    """Options of the RL-style runners: length, env count, and the time-to-threshold check."""
    parser.add_argument("--total-timesteps", type=int, default=total_timesteps,
                        help=f"env steps (default {total_timesteps})")
    parser.add_argument("--n-envs", type=int, default=8, help="parallel envs (default 8)")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="evaluate every K env steps to find when the threshold is first reached (0: off)")
    parser.add_argument("--check-episodes", type=int, default=20, help="episodes per periodic evaluation (default 20)")
    parser.add_argument("--threshold", type=float, default=None, help="default: the env's reward_threshold")
    parser.add_argument("--stop-at-threshold", action="store_true", help="stop training once the threshold is reached")
    parser.add_argument("--confirm-episodes", type=int, default=0,
                        help="a check at the threshold counts only if these many episodes (the check's and more, "
                             "the same seeds onward) average at it too (0: the check alone; demokit's MuJoCo rule: 50)")


def check_training_args(args: argparse.Namespace) -> None:
    if args.total_timesteps < 1 or args.n_envs < 1:
        raise PeerError("--total-timesteps and --n-envs must be >= 1")
    if args.eval_every < 0:
        raise PeerError(f"--eval-every must be >= 0, got {args.eval_every}")
    if args.check_episodes < 1:
        raise PeerError(f"--check-episodes must be >= 1, got {args.check_episodes}")
    if args.confirm_episodes and args.confirm_episodes <= args.check_episodes:
        raise PeerError(f"--confirm-episodes must be 0 or more than --check-episodes ({args.check_episodes}), "
                        f"got {args.confirm_episodes}")


class ThresholdTracker:
    """Periodic deterministic evaluations during training; remembers when the mean return
    first reached the threshold (env steps and wall time since `start()`, evaluations included)."""

    def __init__(self, args: argparse.Namespace, env_id: str) -> None:
        self.every = args.eval_every
        self.episodes = args.check_episodes
        self.confirm = getattr(args, "confirm_episodes", 0)
        self.env_id = env_id
        self.seed = args.seed + 30_000
        self.threshold = reward_threshold(env_id, args.threshold) if self.every else None
        self.next_at = self.every
        self.checks: list[dict[str, Any]] = []
        self.first: dict[str, Any] = {}
        self.wall = 0.0
        self.t0 = time.perf_counter()

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def due(self, env_steps: int) -> bool:
        return bool(self.every) and env_steps >= self.next_at

    def check(self, env_steps: int, predict: Callable[[np.ndarray], Any]) -> bool:
        """Evaluate now; True the first time the threshold is reached."""
        while self.next_at <= env_steps:
            self.next_at += self.every
        c0 = time.perf_counter()
        mean_return = evaluate(predict, self.env_id, self.episodes, seed=self.seed)["mean_return"]
        check: dict[str, Any] = {"env_steps": env_steps, "mean_return": mean_return}
        if not self.first and self.confirm and mean_return >= self.threshold:
            more = evaluate(predict, self.env_id, self.confirm - self.episodes, seed=self.seed + self.episodes)
            check["confirm_return"] = (mean_return * self.episodes + more["mean_return"] * (
                self.confirm - self.episodes)) / self.confirm
        self.wall += time.perf_counter() - c0
        self.checks.append(check)
        if self.first or check.get("confirm_return", mean_return) < self.threshold:
            return False
        self.first = {"env_steps": env_steps, "wall_s": round(time.perf_counter() - self.t0, 3)}
        return True

    def summary(self) -> dict[str, Any]:
        if not self.every:
            return {}
        return {"eval_every": self.every, "threshold": self.threshold, "check_episodes": self.episodes,
                "confirm_episodes": self.confirm,
                "check_wall_s": round(self.wall, 3), "checks": self.checks, "reached": bool(self.first),
                "reached_env_steps": self.first.get("env_steps"), "reached_wall_s": self.first.get("wall_s")}


def setup_run(seed: int, threads: int) -> None:
    """Seed python, numpy and torch; set the torch thread count."""
    import torch

    if threads < 1:
        raise PeerError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions(*packages: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def machine() -> dict[str, Any]:
    """CPU count and load at the end of the run: a 1-minute load above the core count
    means other processes competed for the CPU and wall times are inflated (compare
    the *_cpu_s figures, process CPU time, which contention barely changes)."""
    return {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)}


def imitation_result(fields: dict[str, Any], *, args: argparse.Namespace, tracker: ThresholdTracker,
                     ev: dict[str, Any], wall: float, cpu: float, t_start: float, t_imported: float,
                     setup_wall: float) -> dict[str, Any]:
    """The JSON result of an imitation trainer's run: ``fields`` (peer, env_id, settings, ...), the training
    wall / CPU time, the final evaluation ``ev``, the threshold checks, timings, seed, machine and versions."""
    result = {**fields, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), **ev,
              "total_wall_s": round(wall + ev["eval_wall_s"], 3), **tracker.summary()}
    result.update(import_wall_s=round(t_imported - t_start, 3), setup_wall_s=round(setup_wall, 3),
                  script_wall_s=round(time.perf_counter() - t_start, 3), seed=args.seed, threads=args.threads,
                  machine=machine(), versions=versions("imitation", "stable-baselines3", "gymnasium", "torch", "numpy"))
    return result


def load_demos(path: str) -> dict[str, np.ndarray]:
    """Read and validate a demonstration `.npz` (layout: README.md)."""
    if not os.path.isfile(path):
        raise PeerError(f"demonstration file {path} does not exist (export one with benchmarks._peers.export_npz)")
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise PeerError(f"{path} lacks key(s) {', '.join(missing)}; expected the layout in benchmarks/peers/README.md")
    version = int(data.get("layout_version", NPZ_LAYOUT_VERSION))
    if version != NPZ_LAYOUT_VERSION:
        raise PeerError(f"{path} has layout_version {version}; these runners read {NPZ_LAYOUT_VERSION}")
    obs, acts = data["obs"], data["acts"]
    n = obs.shape[0]
    if obs.ndim != 2 or data["next_obs"].shape != obs.shape:
        raise PeerError(f"{path}: obs must be (N, D) and next_obs the same shape, got {obs.shape} / "
                        f"{data['next_obs'].shape}")
    if acts.shape[0] != n or acts.ndim not in (1, 2):
        raise PeerError(f"{path}: acts must be (N,) or (N, A) with N = {n}, got {acts.shape}")
    for key in ("terminated", "truncated", "dones") + (("rews",) if "rews" in data else ()):
        if data[key].shape != (n,):
            raise PeerError(f"{path}: {key} must have shape ({n},), got {data[key].shape}")
    starts, lengths = data["episode_starts"].astype(np.int64), data["episode_lengths"].astype(np.int64)
    if starts.shape != lengths.shape or starts.ndim != 1 or len(starts) == 0:
        raise PeerError(f"{path}: episode_starts / episode_lengths must be equal non-empty (E,) arrays")
    if lengths.min() < 1 or not np.array_equal(starts, np.cumsum(lengths) - lengths) or lengths.sum() != n:
        raise PeerError(f"{path}: the episode index does not cover the {n} transitions contiguously")
    ends = starts + lengths - 1
    dones = data["dones"].astype(bool)
    if not (dones[ends].all() and dones.sum() == len(ends)):
        raise PeerError(f"{path}: dones must be true exactly at the last step of each episode")
    data["obs"] = obs.astype(np.float32, copy=False)
    data["next_obs"] = data["next_obs"].astype(np.float32, copy=False)
    data["acts"] = acts.astype(np.int64 if acts.ndim == 1 else np.float32, copy=False)
    for key in ("terminated", "truncated", "dones"):
        data[key] = data[key].astype(bool)
    data["episode_starts"], data["episode_lengths"] = starts, lengths
    return data


def write_demos(path: str, *, obs: np.ndarray, next_obs: np.ndarray, acts: np.ndarray,
                terminated: np.ndarray, truncated: np.ndarray, episode_lengths: np.ndarray,
                rews: np.ndarray | None = None, env_id: str | None = None) -> dict[str, Any]:
    """Write the demonstration `.npz` layout (README.md); returns a small summary."""
    lengths = np.asarray(episode_lengths, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    terminated = np.asarray(terminated, dtype=bool)
    truncated = np.asarray(truncated, dtype=bool)
    dones = np.zeros(len(terminated), dtype=bool)
    dones[starts + lengths - 1] = True
    acts = np.asarray(acts)
    arrays: dict[str, Any] = {
        "layout_version": np.int64(NPZ_LAYOUT_VERSION),
        "obs": np.asarray(obs, dtype=np.float32),
        "next_obs": np.asarray(next_obs, dtype=np.float32),
        "acts": acts.astype(np.int64 if acts.ndim == 1 else np.float32, copy=False),
        "terminated": terminated,
        "truncated": truncated,
        "dones": dones,
        "episode_starts": starts,
        "episode_lengths": lengths,
    }
    if rews is not None:
        arrays["rews"] = np.asarray(rews, dtype=np.float32)
    if env_id:
        arrays["env_id"] = np.asarray(env_id)
    with open(path, "wb") as f:  # a file object: np.savez does not append ".npz" to it
        np.savez(f, **arrays)
    load_demos(path)  # validate what was written
    return {"path": path, "transitions": int(lengths.sum()), "episodes": int(len(lengths))}


def imitation_trajectories(data: dict[str, np.ndarray]) -> list[Any]:
    """npz arrays -> imitation `Trajectory` list (obs has T+1 rows: the episode's
    observations plus its last next_obs; terminal = the last step's `terminated`)."""
    from imitation.data import types

    trajs = []
    for start, length in zip(data["episode_starts"], data["episode_lengths"]):
        end = start + length
        obs = np.concatenate([data["obs"][start:end], data["next_obs"][end - 1:end]], axis=0)
        trajs.append(types.Trajectory(obs=obs, acts=data["acts"][start:end], infos=None,
                                      terminal=bool(data["terminated"][end - 1])))
    return trajs


def demo_env_id(data: dict[str, np.ndarray], given: str | None) -> str:
    if given:
        return given
    if "env_id" in data and str(data["env_id"]):
        return str(data["env_id"])
    raise PeerError("the .npz holds no env_id: pass --env-id")


def check_demos_fit_env(data: dict[str, np.ndarray], env: Any) -> None:
    """The npz must match the env: flat Box observations, Discrete or flat Box actions."""
    obs_shape = env.observation_space.shape
    if obs_shape is None or len(obs_shape) != 1 or obs_shape[0] != data["obs"].shape[1]:
        raise PeerError(f"the demonstrations have {data['obs'].shape[1]}-dim observations but the env's "
                        f"observation space is {env.observation_space}")
    act_space = env.action_space
    acts = data["acts"]
    if hasattr(act_space, "n"):
        if acts.ndim != 1 or acts.min() < 0 or acts.max() >= int(act_space.n):
            raise PeerError(f"the demonstration actions (shape {acts.shape}, range {acts.min()}..{acts.max()}) "
                            f"do not fit the env's action space {act_space}")
    elif acts.ndim != 2 or act_space.shape != (acts.shape[1],):
        raise PeerError(f"the demonstration actions have shape {acts.shape} but the env's action space is {act_space}")


def make_env(env_id: str) -> Any:
    import gymnasium as gym

    try:
        return gym.make(env_id)
    except gym.error.Error as exc:
        raise PeerError(f"cannot make env {env_id!r}: {exc}") from None


def open_demos(path: str, env_id: str | None) -> tuple[dict[str, np.ndarray], str, Any, Any]:
    """Load the npz, resolve the env id, and check both fit: (data, env_id, obs space, action space)."""
    data = load_demos(path)
    env_id = demo_env_id(data, env_id)
    env = make_env(env_id)
    try:
        check_demos_fit_env(data, env)
        return data, env_id, env.observation_space, env.action_space
    finally:
        env.close()


def evaluate(predict: Callable[[np.ndarray], Any], env_id: str, episodes: int, seed: int) -> dict[str, Any]:
    """Run `episodes` episodes with `predict(obs) -> action`; episode i resets with seed + i."""
    if episodes < 0:
        raise PeerError(f"the number of evaluation episodes must be >= 0, got {episodes}")
    returns, lengths = [], []
    t0 = time.perf_counter()
    env = make_env(env_id)
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(predict(obs))
                total += float(reward)
                steps += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(steps)
    finally:
        env.close()
    wall = time.perf_counter() - t0
    arr = np.asarray(returns, dtype=np.float64)
    return {
        "mean_return": float(arr.mean()) if episodes else None,
        "std_return": float(arr.std()) if episodes else None,
        "mean_length": float(np.mean(lengths)) if episodes else None,
        "eval_episodes": episodes,
        "eval_wall_s": round(wall, 4),
    }


def reward_threshold(env_id: str, given: float | None) -> float:
    if given is not None:
        return given
    env = make_env(env_id)
    threshold = env.spec.reward_threshold
    env.close()
    if threshold is None:
        raise PeerError(f"{env_id} has no reward_threshold: pass --threshold")
    return float(threshold)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Keep library chatter (loggers, progress bars) off stdout: stdout carries only the JSON line."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, sort_keys=False) + "\n")
    sys.stdout.flush()


def run_main(main: Callable[[], dict[str, Any]]) -> None:
    """Run `main`, print its result as one JSON line; a PeerError becomes `error:` + exit 2."""
    try:
        result = main()
    except PeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    emit(result)
