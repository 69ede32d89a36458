"""Driver run by the real DI-engine's python (``.venv-ding``, see scripts/setup_peers.sh ding).

``collect DIR``: DI-engine's own ``collect_demo_data`` (random-weight DQN on CartPole-v0, SAC on
Pendulum-v1, dizoo's envs) writes expert data in both of its layouts (``data_type='naive'``: a
pickle; ``'hdf5'``: ``<name>_demos.hdf5``) into DIR: the fixtures of test_ding_real.py.

``check DIR OUT.npz``: DI-engine's consumers read what demokit wrote into DIR (``cartpole.pkl``,
``cartpole.hdf5``, ``pendulum.pkl``, ``pendulum.hdf5``): ``NaiveRLDataset`` and ``HDF5Dataset``
(through ``create_dataset``, as ``serial_pipeline_offline`` builds them), ``GailRewardModel`` (its
``load_expert_data`` reads ``<data_path>/expert_data.pkl``), ``PwilRewardModel.load_expert_data``,
and ``serial_pipeline_bc`` trains a few iterations on each pickle (discrete and continuous BC).
What they read goes to OUT.npz.

Not a test module: it imports ding, which demokit's own venv does not have.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from copy import deepcopy
from pathlib import Path

import numpy as np
import torch
from easydict import EasyDict


def _configs(name: str) -> tuple[EasyDict, EasyDict]:
    if name == "cartpole":
        from dizoo.classic_control.cartpole.config.cartpole_dqn_config import create_config, main_config
    else:
        from dizoo.classic_control.pendulum.config.pendulum_sac_config import create_config, main_config
    return deepcopy(main_config), deepcopy(create_config)


def collect(out: Path) -> None:
    from ding.entry import collect_demo_data
    from ding.model import DQN, ContinuousQAC

    for name, count in (("cartpole", 96), ("pendulum", 230)):
        for data_type in ("naive", "hdf5"):
            cfg, create = _configs(name)
            cfg.exp_name = f"collect_{name}_{data_type}"
            cfg.policy.collect.data_type = data_type
            cfg.policy.collect.n_sample = 16
            cfg.env.collector_env_num = 2 if name == "cartpole" else 1
            torch.manual_seed(0)
            model = DQN(**cfg.policy.model) if name == "cartpole" else ContinuousQAC(**cfg.policy.model)
            with torch.no_grad():  # larger weights: the greedy actions of the random network vary with the obs
                for param in model.parameters():
                    param.mul_(8)
            collect_demo_data((cfg, create), seed=0, collect_count=count, expert_data_path=str(out / f"{name}.pkl"),
                              state_dict={"model": model.state_dict()})


def _stack(items: list, key: str) -> np.ndarray:
    return np.stack([np.asarray(item[key]) for item in items])


def check(folder: Path, out: Path) -> None:
    from ding.entry import serial_pipeline_bc
    from ding.reward_model.gail_irl_model import GailRewardModel
    from ding.reward_model.pwil_irl_model import PwilRewardModel
    from ding.utils.data import NaiveRLDataset, create_dataset

    result: dict[str, np.ndarray] = {}
    for name in ("cartpole", "pendulum"):
        cfg, create = _configs(name)
        pkl = str(folder / f"{name}.pkl")
        naive = NaiveRLDataset(pkl)
        items = [naive[i] for i in range(len(naive))]
        for key in ("obs", "next_obs", "action", "reward", "done"):
            result[f"{name}/naive/{key}"] = _stack(items, key)
        cfg.policy.collect.data_type, cfg.policy.collect.data_path = "hdf5", str(folder / f"{name}.hdf5")
        hdf5 = create_dataset(cfg)  # HDF5Dataset: every root dataset, then statistics of obs and action
        rows = [hdf5[i] for i in range(len(hdf5))]
        for key in ("obs", "next_obs", "action", "reward", "done"):
            result[f"{name}/hdf5/{key}"] = _stack(rows, key)
        result[f"{name}/hdf5/mean"] = np.asarray(hdf5.mean)
        gail_dir = Path(tempfile.mkdtemp())
        shutil.copy(pkl, gail_dir / "expert_data.pkl")  # GAIL's fixed file name
        obs_dim = result[f"{name}/naive/obs"].shape[1]
        act_dim = result[f"{name}/naive/action"].shape[1]
        gail_cfg = EasyDict(GailRewardModel.config)
        gail_cfg.update(data_path=str(gail_dir), input_size=obs_dim + act_dim)
        gail = GailRewardModel(gail_cfg, "cpu", None)
        result[f"{name}/gail"] = torch.stack(gail.expert_data).numpy()
        pwil_cfg = EasyDict(PwilRewardModel.config)
        pwil_cfg.update(expert_data_path=pkl, sample_size=10 ** 6)
        pwil = PwilRewardModel(pwil_cfg, "cpu", None)
        result[f"{name}/pwil_count"] = np.array(len(pwil.expert_s))
        # BC on the pickle: a few iterations (evaluation of the untrained policy included)
        bc_cfg, bc_create = _configs(name)
        bc_create.policy.type = "bc"
        bc_cfg.exp_name = f"bc_{name}"
        bc_cfg.policy.learn.train_epoch = 1
        bc_cfg.policy.learn.batch_size = 16
        bc_cfg.policy.eval.evaluator.eval_freq = 10 ** 6
        bc_cfg.env.evaluator_env_num = bc_cfg.env.n_evaluator_episode = 1
        if name == "cartpole":
            bc_cfg.policy.continuous = False
            bc_cfg.policy.model = dict(obs_shape=4, action_shape=2)
        else:
            bc_cfg.policy.continuous = True
            bc_cfg.policy.model = dict(obs_shape=3, action_shape=1, action_space="regression",
                                       actor_head_hidden_size=32)
            bc_cfg.policy.loss_type = "l1_loss"
        policy, _ = serial_pipeline_bc((bc_cfg, bc_create), seed=0, data_path=pkl, max_iter=3)
        result[f"{name}/bc_trained"] = np.array(True)
    np.savez(out, **result)


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2]).resolve()
    os.chdir(tempfile.mkdtemp())  # DI-engine writes its configs and logs into the working directory
    if command == "collect":
        collect(where)
    else:
        check(where, Path(sys.argv[3]).resolve())
