"""Models by name, sized from the dataset spec, initialized from a private seeded generator.

``mlp`` (784-256-256-10 on Fashion-MNIST: a workload a CPU trains to saturation, the demo's),
``small_cnn`` (three conv blocks, ~25k parameters: CPU tests), ``resnet9`` (the fast
DAWNBench/airbench-style network), ``resnet18`` and ``resnet50``. The ResNets are CIFAR-style
(3x3 stride-1 stem, no max-pool) for images up to LARGE_IMAGE_PIXELS; above that (ImageNet)
they are torchvision's unchanged ImageNet ResNets. Input channels and classes come from the spec.

Models are built on the meta device and then initialized parameter by parameter from a
``torch.Generator`` seeded with the run seed, so the global RNG is never read or reseeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torchvision
from torch import nn

from prunebench.errors import unknown

LARGE_IMAGE_PIXELS = 64
"""Images taller than this get the ImageNet stem (7x7 stride 2 + max-pool)."""

MLP_WIDTH = 256
"""Hidden width of ``mlp``: 784-256-256-10 reaches ~90% on Fashion-MNIST in 10 CPU-cheap epochs."""

_MODELS: dict[str, Callable[[int, int, int], nn.Module]] = {}


def register_model(name: str):
    """Decorator: register a builder ``(channels, num_classes, height) -> nn.Module``."""

    def decorate(builder: Callable[[int, int, int], nn.Module]):
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice")
        _MODELS[name] = builder
        return builder

    return decorate


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(_MODELS)


def build_model(name: str, spec, seed: int) -> nn.Module:
    """Model ``name`` sized for dataset ``spec``, initialized from ``seed``."""
    if name not in _MODELS:
        raise unknown("model", name, available_models())
    with torch.device("meta"):
        model = _MODELS[name](spec.channels, spec.num_classes, spec.height)
    model = model.to_empty(device="cpu")
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    initialize(model, generator)
    return model


@torch.no_grad()
def initialize(model: nn.Module, generator: torch.Generator) -> None:
    """(Re)initialize every parameter and buffer of ``model`` from ``generator``.

    Convolutions: Kaiming normal (fan-out, ReLU), as torchvision's ResNets; linear layers:
    PyTorch's default Kaiming-uniform; norms: weight 1, bias 0, fresh running statistics.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(
                module.weight, mode="fan_out", nonlinearity="relu", generator=generator
            )
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.reset_running_stats()
        elif any(True for _ in module.parameters(recurse=False)) or any(
            True for _ in module.buffers(recurse=False)
        ):
            raise TypeError(f"initialize() does not know how to initialize {type(module).__name__}")


def _conv_bn(channels_in: int, channels_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """x + body(x)."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Scale(nn.Module):
    """Multiply by a constant (ResNet-9's logit scaling)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


@register_model("mlp")
def mlp(channels: int, num_classes: int, height: int) -> nn.Module:
    """Two hidden ReLU layers of MLP_WIDTH on the flattened image (square images assumed)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * height * height, MLP_WIDTH),
        nn.ReLU(inplace=True),
        nn.Linear(MLP_WIDTH, MLP_WIDTH),
        nn.ReLU(inplace=True),
        nn.Linear(MLP_WIDTH, num_classes),
    )


@register_model("small_cnn")
def small_cnn(channels: int, num_classes: int, height: int) -> nn.Module:
    """Three conv-BN-ReLU blocks (16, 32, 64 channels), global average pool, linear."""
    return nn.Sequential(
        _conv_bn(channels, 16),
        nn.MaxPool2d(2),
        _conv_bn(16, 32),
        nn.MaxPool2d(2),
        _conv_bn(32, 64),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


@register_model("resnet9")
def resnet9(channels: int, num_classes: int, height: int) -> nn.Module:
    """The DAWNBench ResNet-9 (64-128-256-512, two residual blocks, 0.125 logit scale)."""
    return nn.Sequential(
        _conv_bn(channels, 64),
        _conv_bn(64, 128),
        nn.MaxPool2d(2),
        Residual(_conv_bn(128, 128), _conv_bn(128, 128)),
        _conv_bn(128, 256),
        nn.MaxPool2d(2),
        _conv_bn(256, 512),
        nn.MaxPool2d(2),
        Residual(_conv_bn(512, 512), _conv_bn(512, 512)),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(512, num_classes, bias=False),
        Scale(0.125),
    )


def _resnet(
    block: type[nn.Module], layers: list[int], channels: int, num_classes: int, height: int
) -> nn.Module:
    model = torchvision.models.resnet.ResNet(block, layers, num_classes=num_classes)
    if height > LARGE_IMAGE_PIXELS:
        if channels != 3:
            model.conv1 = nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False)
        return model
    # CIFAR-style: small images keep their resolution through the stem.
    model.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


@register_model("resnet18")
def resnet18(channels: int, num_classes: int, height: int) -> nn.Module:
    """ResNet-18: CIFAR-style below LARGE_IMAGE_PIXELS, torchvision's ImageNet model above."""
    return _resnet(
        torchvision.models.resnet.BasicBlock, [2, 2, 2, 2], channels, num_classes, height
    )


@register_model("resnet50")
def resnet50(channels: int, num_classes: int, height: int) -> nn.Module:
    """ResNet-50: CIFAR-style below LARGE_IMAGE_PIXELS, torchvision's ImageNet model above."""
    return _resnet(
        torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], channels, num_classes, height
    )
