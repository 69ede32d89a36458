"""Observation encoders: the interface, the registry and the built-in encoders (registered here)."""

from gymnasium import spaces

from demokit.errors import UserError
from demokit.policies.encoders.base import ENCODERS, Encoder, encoder_class, register_encoder
from demokit.policies.encoders.cnn import NatureCNNEncoder, image_layout
from demokit.policies.encoders.cnn_diff import FrameDiffCNNEncoder
from demokit.policies.encoders.mlp import MLPEncoder

register_encoder("mlp", MLPEncoder)
register_encoder("nature_cnn", NatureCNNEncoder)
register_encoder("nature_cnn_diff", FrameDiffCNNEncoder)


def resolve_encoder(name: str, observation_space: spaces.Space) -> str:
    """The encoder to build for ``observation_space``: ``name`` itself (an unknown name, or a space that
    encoder cannot take, is a UserError), or for "auto" nature_cnn on uint8 images of at least 36x36, else mlp."""
    if name != "auto":
        encoder_class(name).check_space(observation_space)
        return name
    try:
        image_layout(observation_space)
    except UserError:
        return "mlp"
    return "nature_cnn"


__all__ = ["ENCODERS", "Encoder", "FrameDiffCNNEncoder", "MLPEncoder", "NatureCNNEncoder", "encoder_class", "register_encoder",
           "resolve_encoder"]
