"""ResNets of Zhang et al. (2022): ResNet101 on ImageNet (Section 2, Figs. 1, 2, 5, 7), the
CIFAR-10 ResNet18 of kuangliu/pytorch-cifar (Appendix A.1, Fig. 6), and a small ResNet for the
offline tiers.

``resnet101`` and ``cifar_resnet18`` are torchvision's models (the latter with the CIFAR stem:
a 3×3 stride-1 first convolution and no max-pool). The small ResNet is built from
:class:`BasicBlock`, which has exactly the structure, parameter names and forward pass of
torchvision's ``BasicBlock`` (a test loads the same state dict into both and compares); it is
defined here only because importing torchvision costs more than a second per job, which the
offline tiers, with one statistics job per checkpoint, pay many times.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with padding 1 and no bias (as torchvision's)."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """The basic residual block of He et al. (2016) (torchvision's ``BasicBlock``):
    relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut a 1×1 conv + BN when the
    shape changes."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SmallResNet(nn.Module):
    """A small ResNet for tiny images: a 3×3 stem (conv + BN + ReLU), one :class:`BasicBlock`
    per entry of ``channels`` (with the given ``strides``), global average pooling and a linear
    classifier. Initialized as torchvision's ResNets (Kaiming normal convolutions, BN weight 1
    and bias 0)."""

    def __init__(
        self,
        channels: Sequence[int] = (8, 8),
        strides: Sequence[int] | None = None,
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        strides = [1] * len(channels) if strides is None else [int(s) for s in strides]
        if not channels or len(strides) != len(channels):
            raise ValueError("channels must be non-empty and as long as strides")
        self.stem = nn.Sequential(
            conv3x3(in_channels, channels[0]), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)
        )
        blocks, width = [], channels[0]
        for planes, stride in zip(channels, strides, strict=True):
            blocks.append(BasicBlock(width, planes, stride))
            width = planes
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(self.pool(x).flatten(1))


def small_resnet(
    channels: Sequence[int] = (8, 8),
    strides: Sequence[int] | None = None,
    in_channels: int = 1,
    num_classes: int = 10,
) -> SmallResNet:
    return SmallResNet(channels, strides, in_channels, num_classes)


def cifar_resnet18(num_classes: int = 10) -> nn.Module:
    """ResNet18 for 32×32 images (kuangliu/pytorch-cifar): torchvision's resnet18 with a 3×3
    stride-1 stem convolution and no max-pool."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model


def resnet101(num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet101, randomly initialized (Zhang et al. Section 2)."""
    from torchvision.models import resnet101 as tv_resnet101

    return tv_resnet101(weights=None, num_classes=num_classes)


def mlp(
    in_features: int, hidden: Sequence[int] = (32,), out_features: int = 10, flatten: bool = True
) -> nn.Module:
    """A plain ReLU multilayer perceptron (no BatchNorm), for tests and small experiments."""
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    width = int(in_features)
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        width = int(h)
    layers.append(nn.Linear(width, int(out_features)))
    return nn.Sequential(*layers)
