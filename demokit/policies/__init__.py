"""Policies: the interface, the MLP policy, the random baseline, checkpoints."""

from demokit.policies.base import Policy
from demokit.policies.checkpoint import Checkpoint, file_sha256, load_checkpoint, load_policy, save_checkpoint
from demokit.policies.ensemble import EnsemblePolicy
from demokit.policies.neural import NeuralPolicy, PolicyArch, build_policy, default_head, make_policy, register_policy_kind
from demokit.policies.normalization import ObsNormalizer
from demokit.policies.random import RandomPolicy

register_policy_kind("ensemble", EnsemblePolicy)

__all__ = ["Checkpoint", "EnsemblePolicy", "NeuralPolicy", "ObsNormalizer", "Policy", "PolicyArch", "RandomPolicy", "build_policy", "default_head",
           "file_sha256", "load_checkpoint", "load_policy", "make_policy", "register_policy_kind", "save_checkpoint"]
