"""Policy heads: the interface, the registry and the built-in heads (registered here)."""

from demokit.policies.heads.base import HEADS, Head, head_class, register_head
from demokit.policies.heads.categorical import CategoricalHead
from demokit.policies.heads.gaussian import GaussianHead
from demokit.policies.heads.qvalue import QValueHead
from demokit.policies.heads.squashed_gaussian import SquashedGaussianHead

register_head("categorical", CategoricalHead)
register_head("gaussian", GaussianHead)
register_head("qvalue", QValueHead)
register_head("squashed_gaussian", SquashedGaussianHead)

__all__ = ["CategoricalHead", "GaussianHead", "HEADS", "Head", "QValueHead", "SquashedGaussianHead", "head_class", "register_head"]
