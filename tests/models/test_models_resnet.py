"""The vision models against torchvision: the block, the CIFAR stem, ResNet101's size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sgdconv.models.registry import MODELS, build_model, register_model
from sgdconv.models.resnet import BasicBlock, SmallResNet


@pytest.mark.parametrize(("inplanes", "planes", "stride"), [(8, 8, 1), (8, 16, 2), (4, 8, 1)])
def test_basic_block_is_torchvisions(inplanes, planes, stride):
    from torchvision.models.resnet import BasicBlock as TVBlock

    torch.manual_seed(0)
    ours = BasicBlock(inplanes, planes, stride)
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
        )
    theirs = TVBlock(inplanes, planes, stride, downsample)
    # Same parameter and buffer names: torchvision's state dict loads strictly.
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(5, inplanes, 8, 8)
    for train in (True, False):
        ours.train(train)
        theirs.train(train)
        assert torch.equal(ours(x), theirs(x))


def test_small_resnet_shapes_and_parameters():
    model = SmallResNet(channels=[8, 16], strides=[1, 2], in_channels=1, num_classes=10)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    # stem 1*8*9 + BN 16; block1 2*(8*8*9) + 2 BN; block2 8*16*9 + 16*16*9 + 1x1 8*16 + 3 BN
    expected = 72 + 16 + 2 * 576 + 32 + 1152 + 2304 + 128 + 96 + 16 * 10 + 10
    assert sum(p.numel() for p in model.parameters()) == expected


def test_cifar_resnet18_has_the_cifar_stem():
    model = build_model("cifar_resnet18", num_classes=10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    # kuangliu's ResNet18 has 11,173,962 parameters for 10 classes.
    assert sum(p.numel() for p in model.parameters()) == 11_173_962


def test_resnet101_is_torchvisions():
    model = build_model("resnet101")
    # torchvision's ResNet101 (He et al. 2016) has 44,549,160 parameters.
    assert sum(p.numel() for p in model.parameters()) == 44_549_160


def test_registry_extension_and_errors():
    register_model("tiny_mlp_for_test", lambda: nn.Linear(2, 1))
    try:
        assert isinstance(build_model("tiny_mlp_for_test"), nn.Linear)
        assert isinstance(build_model("torch.nn:Identity"), nn.Identity)
        with pytest.raises(ValueError, match="already registered"):
            register_model("tiny_mlp_for_test", "other:thing")
    finally:
        MODELS.pop("tiny_mlp_for_test")
    with pytest.raises(KeyError, match="unknown model"):
        build_model("vgg16")
