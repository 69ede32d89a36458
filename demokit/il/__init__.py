"""Imitation learning from demokit datasets: behavioral cloning and DAgger.

>>> from demokit.il import train_bc
>>> result = train_bc("datasets/cartpole-v1-expert.h5", epochs=50)   # doctest: +SKIP
"""

from demokit.il.bc import BCConfig, BCResult, bc_loss, default_bc_out, train_bc
from demokit.il.dagger import DAggerConfig, DAggerResult, beta_schedule, rollout_mixture, train_dagger

__all__ = ["BCConfig", "BCResult", "DAggerConfig", "DAggerResult", "bc_loss", "beta_schedule", "default_bc_out",
           "rollout_mixture", "train_bc", "train_dagger"]
