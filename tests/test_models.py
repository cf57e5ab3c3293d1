"""Models by name: shapes from the dataset spec, CIFAR vs ImageNet stems, seeded initialization."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from prunebench.bench.models import available_models, build_model
from prunebench.datasets import get_spec, synthetic_spec
from prunebench.errors import ConfigError

TINY = synthetic_spec(channels=3, height=8, width=8, num_classes=7)


def test_registry_names():
    assert available_models() == ["mlp", "resnet18", "resnet50", "resnet9", "small_cnn"]
    with pytest.raises(ConfigError, match="unknown model 'vgg'; choose one of: mlp, resnet18"):
        build_model("vgg", TINY, seed=0)


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "resnet9", "resnet18", "resnet50"])
@pytest.mark.parametrize("spec", [TINY, get_spec("fashion_mnist")], ids=["8x8x3", "fmnist"])
def test_output_shape_follows_spec(name, spec):
    model = build_model(name, spec, seed=0).eval()
    images = torch.zeros(2, spec.channels, spec.height, spec.width)
    with torch.no_grad():
        assert model(images).shape == (2, spec.num_classes)


def test_cifar_style_resnet_keeps_resolution():
    model = build_model("resnet18", get_spec("cifar10"), seed=0)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)


def test_imagenet_resnet_is_torchvisions():
    model = build_model("resnet50", get_spec("imagenet"), seed=0)
    assert model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, nn.MaxPool2d)
    assert model.fc.out_features == 1000
    reference = sum(p.numel() for p in torchvision.models.resnet50().parameters())
    assert sum(p.numel() for p in model.parameters()) == reference


@pytest.mark.parametrize("name", ["small_cnn", "resnet18"])
def test_seeded_init_is_private_and_reproducible(name):
    global_state = torch.get_rng_state()
    first = build_model(name, TINY, seed=5).state_dict()
    second = build_model(name, TINY, seed=5).state_dict()
    other = build_model(name, TINY, seed=6).state_dict()
    assert torch.equal(global_state, torch.get_rng_state()), "the global RNG must not be used"
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert any(not torch.equal(first[key], other[key]) for key in first)
    for key, tensor in first.items():
        assert torch.isfinite(tensor.float()).all(), key
        if key.endswith("running_var"):
            assert torch.equal(tensor, torch.ones_like(tensor))
        if key.endswith("running_mean"):
            assert torch.equal(tensor, torch.zeros_like(tensor))


def test_small_cnn_is_small():
    count = sum(
        p.numel() for p in build_model("small_cnn", get_spec("fashion_mnist"), 0).parameters()
    )
    assert 15_000 < count < 40_000
