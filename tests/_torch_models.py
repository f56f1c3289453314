"""PyTorch twins of jaxcnn models, for tests/test_convert.py and benchmarks/from_torch.py
(import only where torch is installed).

``resnet18`` is torchvision's ResNet-18 written out by hand with torchvision's module
names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``, ...), so
its ``state_dict`` has the keys and order of ``torchvision.models.resnet18()``'s.
"""

try:
    import torch
except ImportError:  # pytest's --doctest-modules imports every module under tests/
    import pytest

    pytest.skip("torch is not installed", allow_module_level=True)
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


def randomize_batch_norm(module, seed=0):
    """Random running statistics and affine parameters, so that eval mode uses them."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module.eval()


def lenet5():
    """jaxcnn.models.lenet5() (variant "28")."""
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


class _PadShortcut(nn.Module):
    """He et al.'s option A: subsample, zero-pad the channels (no parameters)."""

    def __init__(self, extra):
        super().__init__()
        self.extra = extra

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock; ``shortcut`` "A" pads (CIFAR), "B" projects (ImageNet)."""

    def __init__(self, c_in, c_out, stride=1, shortcut="B"):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = (_PadShortcut(c_out - c_in) if shortcut == "A" else nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """torchvision's ResNet (``imagenet=True``: 7x7 stem and max pool, 4 stages) or the CIFAR
    form of He et al. (3x3 stem, 3 stages of 16-64 channels, option-A shortcuts)."""

    def __init__(self, blocks, widths, num_classes, imagenet):
        super().__init__()
        w0 = widths[0]
        if imagenet:
            self.conv1 = nn.Conv2d(3, w0, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, w0, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w0)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        c_in = w0
        for i, (n, w) in enumerate(zip(blocks, widths)):
            layers = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(BasicBlock(c_in, w, stride, "B" if imagenet else "A"))
                c_in = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.num_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes=1000):
    """torchvision.models.resnet18's architecture and state-dict keys."""
    return ResNet((2, 2, 2, 2), (64, 128, 256, 512), num_classes, imagenet=True)


def resnet20(num_classes=10):
    """jaxcnn.models.resnet20() (option-A shortcuts)."""
    return ResNet((3, 3, 3), (16, 32, 64), num_classes, imagenet=False)
