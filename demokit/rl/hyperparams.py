"""Tuned hyperparameters: ONE table, env id -> learner name -> overrides of its config class.

A learner registered in :mod:`demokit.rl.registry` adds its rows here. Any env not
listed trains with the configs' generic defaults. Rows named ``"bc"`` (:data:`IMITATION_ROWS`)
are behavioral cloning's per-env defaults: keys of ``demokit.il.bc.BCConfig`` that fill the
fields a caller leaves unset (``resolve_bc_config``); DAgger's BC takes the env's ``"dagger"`` row where it has
one, else its ``"bc"`` row. With the defaults,
training stops once the deterministic evaluation (5 quick episodes, confirmed on 20)
reaches the goal: the env's reward_threshold (Pendulum-v1 has none: -200; Acrobot-v1
stops at a stricter -80, confirmed on 50 episodes).

What each entry reached here (2-core CPU shared with other jobs, so wall times are
inflated; seed 0 unless more are given; "steps" = env steps until the goal was confirmed).
SAC rows run in float32; ``precision="bfloat16"`` (mixed precision, ~1.3x faster steps on a
CPU with AVX512-BF16, ~16x slower on an AVX2-only one) is an option, not a tuned setting: it is
not validated on the MuJoCo goals yet.

| env | algo | result | which to use |
|---|---|---|---|
| CartPole-v1 | ppo | 500 in all of seeds 0-4, median ~30k steps (rl-zoo settings) | ppo (fastest) |
| CartPole-v1 | dqn | 500 in seeds 0-2, median ~33k steps | |
| Acrobot-v1 | ppo | stops at -80 (50 eps): seeds 0-4 -83.5/-84.6/-82.6/-87.8/-82.3 over 100 eps, 81k-300k steps (on the 2-core AMD EPYC of sessions 13-14 seed 0's checks sat at -80.4 to -85 past 350k: float kernels differ by CPU) | ppo |
| Acrobot-v1 | dqn | -82 after 30k steps | |
| MountainCar-v0 | dqn | -109 after 100k steps (-103.3 over 100 fresh eps; rl-zoo settings); on the 2-core CI machines seed 0 ends at -110.6 after 120k (goal missed by 0.6: float kernels differ by CPU) | dqn |
| MountainCar-v0 | ppo | -112 after the full 1M steps: goal (-110) not reached | |
| Pendulum-v1 | ppo | -195 / -164 / -162 (seeds 0-2) after 92k-300k steps | |
| Pendulum-v1 | sac | -150 / -150 (seeds 0-1) after 5k steps, 15-18 s (64x64 nets) | sac (fastest) |
| InvertedPendulum-v5 | sac | 1000 / 1000 (seeds 0-1) after 12k / 16k steps (mujoco extra) | sac |
| Hopper-v5 | sac | 3016 +- 40 over 50 episodes after 120k steps (seed 0; quick checks: 406 at 30k, 1200 at 90k, 3016 at 120k) | sac |
| Walker2d-v5 | sac | 4046 +- 41 over 50 episodes after 660k steps (seed 0; quick checks: 2348 at 190k, 3337 at 320k, 3831 at 480k, 3958 at 650k; trained over four sessions with exact resumes) | sac |
| HalfCheetah-v5 | sac | 5186 +- 125 over 50 episodes after 110k steps (seed 0; quick checks: 1586 at 30k, 4183 at 70k, 4913 at 90k) | sac |
| MountainCarContinuous-v0 | ppo | 98/98/99/94/99 (seeds 0-4) after 10k-20k steps (1-2 s) | ppo (dqn: Box actions) |
| LunarLander-v3 | ppo | 214 / 208 (seeds 0-1) after 473k / 702k steps, 63 / 93 s (needs the box2d extra) | ppo |
| LunarLander-v3 | dqn | 228 (std 116: some crashes) after 60k steps, 155 s | |

BC rows (imitation from the reference datasets, not RL; see docs/benchmarks.md, MuJoCo table):

| env | result | |
|---|---|---|
| Hopper-v5 | MSE, 256x256 ReLU; seeds 0-2, 50 episodes: 4 / 11 / 18 / 25 trajectories 0.98 / 0.94 / 0.98 / 1.00 normalised (tanh, seed 0: 0.60 / 0.62 at 4 / 11; generic NLL 64x64 tanh on 25: 0.37) | bc |
| HalfCheetah-v5 | the Hopper row's on raw observations (`normalize_obs` false), an ensemble of 10 (`ensemble` 10) trained on all k trajectories (`val_fraction` 0); seeds 0-2 at 4 trajectories 0.909 / 0.897 / 0.901 (session 10's 5 members with one trajectory of 4 held out: 0.897 / 0.876 / 0.901; 4 / 11 / 18 / 25 trajectories 0.89 / 0.97 / 0.99 / 0.99; the Hopper row's settings: 0.69 / 0.98 / 0.96 / 1.00, flips). DAgger keeps session 10's row (`"dagger"`) | bc |
| Walker2d-v5 | the Hopper row's with lr 2.5e-4 decaying linearly (`lr_schedule` linear), an ensemble of 5 networks acting with their mean action (`ensemble` 5); seeds 0-2: 4 / 11 / 18 / 25 trajectories 0.91 / 0.96 / 1.00 / 0.98, 11 of 12 seeds >= 0.9 (one network: 0.75 / 0.87 / 0.98 / 0.96, 9 of 12; an ensemble of 3: 0.80 / 0.93 / 0.96 / 0.90, 8 of 12; Hopper's row: 0.71 / 0.70 / 0.84 / 0.88) | bc |
"""

from __future__ import annotations

from typing import Any

from demokit.config import from_mapping
from demokit.rl.registry import get_learner

#: rows of the table that configure imitation from data (keys of the IL config), not a registered learner
IMITATION_ROWS = ("bc", "dagger")

#: BC on the MuJoCo locomotion tasks: the mean action fitted by MSE with a 256x256 ReLU net (the SAC experts'
#: shape); evaluated only after training (an evaluation of 1000-step episodes every 250 gradient steps costs
#: more than the training, and the envs' reward thresholds are beyond the experts: it would never stop early).
#: Hopper-v5, seed 0, 50 episodes: 4 trajectories 0.60 (tanh) -> 0.99 (relu), 11 trajectories 0.62 -> 0.99.
#: Session 6 (HalfCheetah-v5, 4 trajectories, 0.62 / 0.59 at seeds 0 / 1): obs_noise, weight_decay and a linear
#: lr schedule gave no consistent gain; normalize_obs=False (0.78 / 0.83) and batch_size 1024 (0.75 / 0.71) did, but
#: both lowered the 11-trajectory cells by 0.01-0.03, so the rows stay (docs/benchmarks.md). Session 9: an ensemble
#: of 3 (`ensemble` 3) leaves HalfCheetah's 4-trajectory cell at 0.69 on average (0.70 / 0.76 / 0.62).
_BC_MUJOCO = dict(loss="mse", hidden_sizes=(256, 256), activation="relu", eval_every=0)
#: HalfCheetah-v5 (session 10): both of session 6's k-4 gains together, raw observations (no flips: the normalised
#: torso pitch made a small tilt many standard deviations) and 5 members: seeds 0-2 at 4 / 11 / 18 / 25 trajectories
#: 0.89 / 0.97 / 0.99 / 0.99 (raw observations alone 0.81 / 0.95 / 0.96 / 0.98; the MuJoCo row 0.69 / 0.98 / 0.96 /
#: 1.00); 10 of 12 seeds >= 0.9 (k 4: 0.897 / 0.876 / 0.901). DAgger takes it too (docs/benchmarks.md, "Session 10").
#: DAgger keeps this row (its own "dagger" row, below): its 12 cells 0.99-1.00 on average.
_DAGGER_HALFCHEETAH = dict(_BC_MUJOCO, normalize_obs=False, ensemble=5)
#: Session 12: BC's row trains on all k trajectories (`val_fraction` 0: the generic 0.1 held one of the 4 out, and
#: nothing here reads the validation loss: eval_every 0, no early stop) and 10 members: k 4 seeds 0-2 0.909 / 0.897 /
#: 0.901 (0.90; the session-10 row 0.897 / 0.876 / 0.901); `val_fraction` 0 alone 0.918 / 0.894 / 0.864, with input
#: noise 0.05 0.54 / 0.51; its 12 cells 0.90 / 0.98 / 0.98 / 0.99 at 4 / 11 / 18 / 25 trajectories (docs/benchmarks.md,
#: the MuJoCo table, "Session 12" after "Session 10"). `val_fraction` 0 on Hopper-v5 was no gain (k 4 seed 2 0.62).
_BC_HALFCHEETAH = dict(_DAGGER_HALFCHEETAH, val_fraction=0.0, ensemble=10)
#: Walker2d-v5: the MuJoCo row with a smaller step decaying to ~0 (lr 2.5e-4, linear): seeds 0-2 at 4 / 11 / 18 / 25
#: trajectories 0.75 / 0.87 / 0.98 / 0.96 against 0.71 / 0.70 / 0.84 / 0.88 with Hopper's row (session 8; lr 2.5e-4
#: constant or 1e-3 linear alone each lost a cell the other won: docs/benchmarks.md). Session 9: with an ensemble of
#: 3 networks acting with their mean action (`ensemble` 3, 3x the training time): 0.80 / 0.93 / 0.96 / 0.90 (goal met
#: on average from 11 on, but seeds >= 0.9 8 of 12 against 9 of 12: k 25 seed 1 fell to 0.76; docs/benchmarks.md,
#: "BC ensembles"), so the row stayed one network; 5 members: 0.91 / 0.96 / 1.00 / 0.98, 11 of 12 seeds >= 0.9
#: (the lowest k 4 seed 1 0.81): the row since session 10 (2.5x one network's training time). DAgger, which takes
#: BC's row, trains the ensemble too, and on Walker2d it did worse with it: 0.77 / 0.95 / 0.96 / 0.72 (one network
#: 0.83 / 0.95 / 0.97 / 0.88; docs/benchmarks.md, "Session 10").
_BC_WALKER2D = dict(_BC_MUJOCO, lr=2.5e-4, lr_schedule="linear", ensemble=5)

TUNED: dict[str, dict[str, dict[str, Any]]] = {
    "CartPole-v1": {
        "ppo": dict(total_timesteps=100_000, num_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98,
                    gae_lambda=0.8, learning_rate=1e-3, lr_schedule="linear", clip_range=0.2,
                    clip_schedule="linear", ent_coef=0.0, eval_every=5_000),
        "dqn": dict(total_timesteps=50_000, num_envs=4, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                    learning_starts=1_000, gamma=0.99, train_freq=256, gradient_steps=128,
                    target_update_interval=128, exploration_fraction=0.16, exploration_final_eps=0.04,
                    hidden_sizes=(64, 64), eval_every=2_500),
    },
    "Acrobot-v1": {
        # rl-zoo settings (batch 64 as in SB3). Stopping at the threshold (-100 on 20 episodes) gave
        # fragile greedy experts that sometimes stall (constant torque at rest, -500) on other seeds:
        # it stops at a stricter -80, confirmed on 50 episodes. Seed 0: 142k steps, -83.5 / -78.8
        # over 100 episodes (seeds 5000 / 6000), no -500 episode (that CPU; on the 2-core AMD EPYC of
        # sessions 13-14 its checks sat at -80.4 to -85 past 350k steps).
        "ppo": dict(total_timesteps=1_000_000, num_envs=16, n_steps=256, batch_size=64, gae_lambda=0.94,
                    n_epochs=4, normalize_obs=True, ent_coef=0.0, stop_value=-80.0, final_eval_episodes=50),
        "dqn": dict(total_timesteps=100_000, num_envs=4, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
                    learning_starts=0, gamma=0.99, train_freq=16, gradient_steps=8, target_update_interval=250,
                    exploration_fraction=0.12, exploration_final_eps=0.1, hidden_sizes=(128, 128),
                    eval_every=5_000),
    },
    "MountainCar-v0": {
        "ppo": dict(total_timesteps=1_000_000, num_envs=16, n_steps=16, batch_size=64, gae_lambda=0.98, n_epochs=4,
                    normalize_obs=True, normalize_reward=True, ent_coef=0.0, eval_every=20_000),
        "dqn": dict(total_timesteps=120_000, learning_rate=4e-3, batch_size=128, buffer_size=10_000,
                    learning_starts=1_000, gamma=0.98, train_freq=16, gradient_steps=8, target_update_interval=300,
                    exploration_fraction=0.2, exploration_final_eps=0.07, hidden_sizes=(256, 256),
                    eval_every=5_000),
    },
    "Pendulum-v1": {  # no reward_threshold registered: -200 is the goal
        "ppo": dict(total_timesteps=400_000, num_envs=8, n_steps=256, batch_size=256, n_epochs=10, gamma=0.95,
                    gae_lambda=0.9, learning_rate=1e-3, normalize_obs=True, normalize_reward=True,
                    log_std_init=-0.5, eval_every=10_000, stop_value=-200.0),
        # rl-zoo's budget and learning rate; 64x64 nets (a quarter of the compute of 256x256 per step):
        # -150 / -150 (seeds 0-1, 20 eps) after 5k steps
        "sac": dict(total_timesteps=20_000, learning_rate=1e-3, hidden_sizes=(64, 64), eval_every=1_000,
                    stop_value=-200.0),
    },
    "MountainCarContinuous-v0": {
        # No gSDE needed: a wide initial Gaussian (std 1, i.e. log_std_init 0) on 8 envs reaches the
        # flag by chance in the first rollouts, obs normalisation makes position/velocity usable;
        # seed 0: 97.8 (20 eps) after 20k steps (seeds 1-4: 98/99/94/99 after 10k), ~2 s of training.
        # With --timesteps 100000 (no early stop) the final policy still gets 94 / 92 (seeds 0 / 3).
        "ppo": dict(total_timesteps=300_000, num_envs=8, normalize_obs=True, log_std_init=0.0, ent_coef=0.0),
    },
    # MuJoCo (the mujoco extra: `pip install demokit[mujoco]`)
    "InvertedPendulum-v5": {  # reward_threshold 950; stops at 1000 (every episode balanced to the time limit)
        "sac": dict(total_timesteps=50_000, learning_starts=1_000, learning_rate=1e-3, hidden_sizes=(64, 64),
                    eval_every=2_000, stop_value=1000.0),
    },
    "Hopper-v5": {  # rl-zoo-like settings; goal 3000 (the zoo's level) on 50 episodes
        "sac": dict(total_timesteps=1_000_000, learning_starts=10_000, batch_size=256, learning_rate=3e-4,
                    tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, hidden_sizes=(256, 256),
                    eval_every=10_000, stop_value=3000.0, final_eval_episodes=50),
        "bc": _BC_MUJOCO,
    },
    "HalfCheetah-v5": {  # rl-zoo settings (no termination: every episode is 1000 steps); goal 5000 on 50 episodes:
        # seed 0 reached 5186 +- 125 (50 episodes) after 110k steps (1.2 h wall on the shared 2 cores)
        "sac": dict(total_timesteps=1_000_000, learning_starts=10_000, batch_size=256, learning_rate=3e-4,
                    tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, hidden_sizes=(256, 256),
                    eval_every=10_000, stop_value=5000.0, final_eval_episodes=50),
        "bc": _BC_HALFCHEETAH,
        "dagger": _DAGGER_HALFCHEETAH,
    },
    "Walker2d-v5": {  # rl-zoo settings; goal 4000 (the zoo's level) on 50 episodes: seed 0 reached
        # 4046 +- 41 (50 episodes) after 660k steps
        "sac": dict(total_timesteps=1_000_000, learning_starts=10_000, batch_size=256, learning_rate=3e-4,
                    tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, hidden_sizes=(256, 256),
                    eval_every=10_000, stop_value=4000.0, final_eval_episodes=50),
        "bc": _BC_WALKER2D,
    },
    "LunarLander-v3": {  # needs the box2d extra; rl-zoo settings. ppo 214 / 208 (seeds 0-1) after
        # 473k / 702k steps (63 / 93 s); dqn (seed 0) 228 but std 116 (some episodes crash) after
        # 60k steps (155 s)
        "ppo": dict(total_timesteps=1_000_000, num_envs=16, n_steps=1024, batch_size=64, n_epochs=4,
                    gae_lambda=0.98, gamma=0.999, ent_coef=0.01),
        "dqn": dict(total_timesteps=100_000, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
                    learning_starts=0, gamma=0.99, train_freq=4, gradient_steps=-1, target_update_interval=250,
                    exploration_fraction=0.12, exploration_final_eps=0.1, hidden_sizes=(256, 256)),
    },
}

def tuned_overrides(algo: str, env_id: str) -> dict[str, Any]:
    """The table's overrides for (algo, env_id); {} for an env not in the table.

    ``algo`` is any registered learner (:mod:`demokit.rl.registry`) or an imitation row
    (:data:`IMITATION_ROWS`); an unknown name is a ConfigError.
    """
    if algo not in IMITATION_ROWS:
        get_learner(algo)
    return dict(TUNED.get(env_id, {}).get(algo, {}))


def learner_rows(env_id: str) -> dict[str, dict[str, Any]]:
    """The env's rows of registered learners (the imitation rows left out), in table order."""
    return {name: dict(row) for name, row in TUNED.get(env_id, {}).items() if name not in IMITATION_ROWS}


def tuned_config(algo: str, env_id: str, **overrides: Any) -> Any:
    """The learner's config for ``env_id``: generic defaults < tuned table < ``overrides``
    (``None`` overrides are ignored, as for CLI options left unset)."""
    return from_mapping(get_learner(algo).config, {"env_id": env_id, **tuned_overrides(algo, env_id)}, **overrides)
