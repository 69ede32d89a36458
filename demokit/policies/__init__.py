"""Policies: the interface, the MLP policy, the random baseline, checkpoints."""

from demokit.policies.base import Policy
from demokit.policies.checkpoint import Checkpoint, file_sha256, load_checkpoint, load_policy, save_checkpoint
from demokit.policies.neural import NeuralPolicy, PolicyArch, default_head, make_policy
from demokit.policies.normalization import ObsNormalizer
from demokit.policies.random import RandomPolicy

__all__ = ["Checkpoint", "NeuralPolicy", "ObsNormalizer", "Policy", "PolicyArch", "RandomPolicy", "default_head",
           "file_sha256", "load_checkpoint", "load_policy", "make_policy", "save_checkpoint"]
