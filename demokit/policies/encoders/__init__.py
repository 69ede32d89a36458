"""Observation encoders: the interface, the registry and the built-in encoders (registered here)."""

from demokit.policies.encoders.base import ENCODERS, Encoder, encoder_class, register_encoder
from demokit.policies.encoders.mlp import MLPEncoder

register_encoder("mlp", MLPEncoder)

__all__ = ["ENCODERS", "Encoder", "MLPEncoder", "encoder_class", "register_encoder"]
