"""Shared torch networks: MLP, a small CNN, CIFAR-style ResNet9 and ResNet18, a small ViT for 28-32 px images, and
the transformer block used by the tiny GPT, the ICL models and the ViT.

Every image/tabular net is a `rote.nets.Net`: `features(x)` gives the representation (B, feature_dim), `forward`
applies the head (classifier, SimCLR projection head, or none), `layer_names()` lists its natural layers as module
names for `rote.core.hooks`, and `prune_units(net.get_submodule(name), idx)` prunes units (filters + their BN).
All constructors take `seed` (weights fixed, global RNG untouched).
"""

from rote.nets.cnn import SmallCNN
from rote.nets.common import Net, ProjectionHead, make_head, prune_units, seeded, unit_layers
from rote.nets.mlp import MLP
from rote.nets.resnet import BasicBlock, ConvBNReLU, Residual, ResNet9, ResNet18
from rote.nets.transformer import Block, BlockConfig, CausalSelfAttention, block_config
from rote.nets.vit import PatchEmbed, ViT

__all__ = [
    "Net",
    "ProjectionHead",
    "make_head",
    "seeded",
    "unit_layers",
    "prune_units",
    "MLP",
    "SmallCNN",
    "ConvBNReLU",
    "Residual",
    "BasicBlock",
    "ResNet9",
    "ResNet18",
    "PatchEmbed",
    "ViT",
    "Block",
    "BlockConfig",
    "CausalSelfAttention",
    "block_config",
]
