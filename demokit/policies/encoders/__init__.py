"""Observation encoders: the interface, the registry and the built-in encoders (registered here)."""

from demokit.policies.encoders.base import ENCODERS, Encoder, encoder_class, register_encoder
from demokit.policies.encoders.cnn import NatureCNNEncoder
from demokit.policies.encoders.mlp import MLPEncoder

register_encoder("mlp", MLPEncoder)
register_encoder("nature_cnn", NatureCNNEncoder)

__all__ = ["ENCODERS", "Encoder", "MLPEncoder", "NatureCNNEncoder", "encoder_class", "register_encoder"]
