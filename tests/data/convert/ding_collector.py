"""Expert pickles written the way DI-engine writes them (no DI-engine needed).

Follows DI-engine's ``collect_demo_data`` (ding/entry/application_entry.py) and
``SampleSerialCollector.collect`` (ding/worker/collector/sample_serial_collector.py):

* ``env_num`` envs step in lockstep; each step's transition of env ``i`` goes to that env's
  trajectory buffer, which is flushed into the returned list when the env is done or the buffer
  holds ``traj_len = max(unroll_len, n_sample // env_num (+1 if it does not divide))`` steps,
  where ``n_sample`` is the *policy's* collect ``n_sample`` (not the demo count);
* a flush runs ``to_tensor_transitions``: every value becomes a tensor except Python scalars,
  and ``next_obs`` of each transition but the last *is* the next transition's ``obs`` tensor;
* the loop stops once ``collect_count`` samples are in; ``drop_extra`` cuts the list there; the
  envs' unflushed buffers are lost; the list is written with ``pickle.dump`` (``naive_save``).

Transitions are DQN's (``obs, next_obs, action, reward, done`` + ``collect_iter``) or PPO's
(``logit`` and ``value`` too). ``reward`` is a float32 tensor of shape (1,) (DI-engine's env
wrapper), ``done`` a Python bool (gymnasium's ``terminated or truncated``) or, as older
collectors did, a float tensor.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch


def controller(obs: np.ndarray) -> int:
    """Balances CartPole for hundreds of steps."""
    return int(obs[2] + 0.5 * obs[3] + 0.05 * obs[1] > 0)


def collect(env_id: str, *, collect_count: int, env_num: int, policy_n_sample: int, seed: int = 0,
            done_as: str = "bool", ppo: bool = False, same_seed: bool = False
            ) -> tuple[list[dict[str, Any]], list[dict[str, np.ndarray]]]:
    """DI-engine's transition list, and the true episodes in it: each env's kept steps (a prefix
    of its steps, since its pieces are flushed in order) cut at its true episode ends, with
    ``done`` (the episode ended in the file) and ``env``."""
    envs = [gym.make(env_id) for _ in range(env_num)]
    traj_len = max(1, policy_n_sample // env_num + int(policy_n_sample % env_num != 0))
    obs_pool = [envs[i].reset(seed=seed if same_seed else seed + i)[0].astype(np.float32) for i in range(env_num)]
    buffers: list[list[dict[str, Any]]] = [[] for _ in range(env_num)]
    truth: list[list[dict[str, list]]] = [[{"obs": [], "action": [], "next_obs": []}] for _ in range(env_num)]
    return_data: list[dict[str, Any]] = []
    owners: list[int] = []
    rng = np.random.default_rng(seed)
    while len(return_data) < collect_count:
        actions = {i: controller(obs_pool[i]) for i in range(env_num)}  # policy forward on every ready env
        for i in range(env_num):
            obs, reward, terminated, truncated, _ = envs[i].step(actions[i])
            obs = obs.astype(np.float32)
            done = terminated or truncated
            transition: dict[str, Any] = {"obs": obs_pool[i], "next_obs": obs,
                                          "action": torch.tensor(actions[i], dtype=torch.int64),
                                          "reward": np.array([reward], dtype=np.float32),
                                          "done": done if done_as == "bool" else torch.tensor(float(done))}
            if ppo:
                transition["logit"] = torch.as_tensor(rng.normal(size=2).astype(np.float32))
                transition["value"] = torch.tensor(float(rng.normal()))
            transition["collect_iter"] = 0
            buffers[i].append(transition)
            ep = truth[i][-1]
            ep["obs"].append(obs_pool[i])
            ep["action"].append(actions[i])
            ep["next_obs"].append(obs)
            if done or len(buffers[i]) == traj_len:
                return_data.extend(_to_tensor_transitions(buffers[i]))
                owners.extend([i] * len(buffers[i]))
                buffers[i] = []
            if done:  # the env manager resets it; its next ready obs is the reset obs
                obs = envs[i].reset()[0].astype(np.float32)
                truth[i].append({"obs": [], "action": [], "next_obs": []})
            obs_pool[i] = obs
    for env in envs:
        env.close()
    kept = np.bincount(np.asarray(owners[:collect_count], dtype=np.int64), minlength=env_num)
    episodes = []
    for i, eps in enumerate(truth):
        left = int(kept[i])
        for ep in eps:
            if left <= 0 or not ep["obs"]:
                break
            take = min(left, len(ep["obs"]))
            complete = take == len(ep["obs"]) and ep is not eps[-1]
            episodes.append({**{k: np.asarray(v[:take]) for k, v in ep.items()}, "done": complete, "env": i})
            left -= take
    return return_data[:collect_count], episodes


def _to_tensor_transitions(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DI-engine's to_tensor_transitions(shallow_copy_next_obs=True) with transform_scalar=False."""
    out = [{k: _to_tensor(v) for k, v in tr.items() if k != "next_obs"} for tr in data]
    for i in range(len(out) - 1):
        out[i]["next_obs"] = out[i + 1]["obs"]
    out[-1]["next_obs"] = _to_tensor(data[-1]["next_obs"])
    return out


def _to_tensor(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return value  # tensors, bools and Python scalars stay as they are


def write(path: Path, transitions: list[dict[str, Any]]) -> Path:
    """DI-engine's naive_save."""
    with open(path, "wb") as f:
        pickle.dump(transitions, f)
    return path
