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


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3)."""

    def __init__(self, c_in, width, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, 4 * width, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != 4 * width:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, 4 * width, 1, stride, bias=False),
                                            nn.BatchNorm2d(4 * width))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(ResNet):
    """torchvision.models.resnet50's architecture and state-dict keys."""

    def __init__(self, num_classes=1000):
        nn.Module.__init__(self)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = 64
        for i, (n, w) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
            layers = []
            for j in range(n):
                layers.append(Bottleneck(c_in, w, 2 if i > 0 and j == 0 else 1))
                c_in = 4 * w
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.num_stages = 4
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)


def resnet34(num_classes=1000):
    """torchvision.models.resnet34's architecture and state-dict keys."""
    return ResNet((3, 4, 6, 3), (64, 128, 256, 512), num_classes, imagenet=True)


def _conv_bn_act(c_in, c_out, k=3, stride=1, groups=1, act=nn.ReLU6):
    """torchvision's Conv2dNormActivation: keys ``.0`` (conv), ``.1`` (batch norm)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(c_out), act(inplace=True))


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block (``conv`` holds the layers)."""

    def __init__(self, c_in, c_out, stride, t):
        super().__init__()
        hidden = c_in * t
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [_conv_bn_act(c_in, hidden, 1)] if t != 1 else []
        layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision.models.mobilenet_v2's architecture and state-dict keys."""

    def __init__(self, num_classes=1000):
        super().__init__()
        features, c_in = [_conv_bn_act(3, 32, 3, 2)], 32
        for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
            for i in range(n):
                features.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        features.append(_conv_bn_act(c_in, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class ShuffleUnit(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual (``branch1``, ``branch2``)."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.stride, half = stride, c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
                nn.BatchNorm2d(c_in), nn.Conv2d(c_in, half, 1, bias=False), nn.BatchNorm2d(half),
                nn.ReLU(inplace=True))
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(c_in if stride > 1 else half, half, 1, bias=False), nn.BatchNorm2d(half),
            nn.ReLU(inplace=True), nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False),
            nn.BatchNorm2d(half), nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half),
            nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        n, c, h, w = out.shape  # torchvision's channel_shuffle(out, 2)
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class ShuffleNetV2(nn.Module):
    """torchvision.models.shufflenet_v2_x1_0's architecture and state-dict keys."""

    def __init__(self, num_classes=1000, widths=(24, 116, 232, 464, 1024), repeats=(4, 8, 4)):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = widths[0]
        for i, (c, n) in enumerate(zip(widths[1:-1], repeats)):
            units = [ShuffleUnit(c_in, c, 2)] + [ShuffleUnit(c, c, 1) for _ in range(n - 1)]
            setattr(self, f"stage{i + 2}", nn.Sequential(*units))
            c_in = c
        self.conv5 = nn.Sequential(nn.Conv2d(c_in, widths[-1], 1, bias=False),
                                   nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True))
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        return self.fc(self.conv5(x).mean([2, 3]))


class Fire(nn.Module):
    """torchvision's SqueezeNet Fire module."""

    def __init__(self, c_in, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """torchvision.models.squeezenet1_1's architecture and state-dict keys."""

    def __init__(self, num_classes=1000):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(inplace=True), pool(), Fire(64, 16, 64),
            Fire(128, 16, 64), pool(), Fire(128, 32, 128), Fire(256, 32, 128), pool(),
            Fire(256, 48, 192), Fire(384, 48, 192), Fire(384, 64, 256), Fire(512, 64, 256))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1),
                                        nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class AlexNet(nn.Module):
    """torchvision.models.alexnet's architecture and state-dict keys."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 36, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class VGG_BN(nn.Module):
    """torchvision.models.vgg11_bn / vgg16_bn's architecture and state-dict keys."""

    CONFIGS = {11: (1, 1, 2, 2, 2), 16: (2, 2, 3, 3, 3)}

    def __init__(self, depth=11, num_classes=1000):
        super().__init__()
        layers, c_in = [], 3
        for stage, n in enumerate(self.CONFIGS[depth]):
            c = 64 * min(2 ** stage, 8)
            for _ in range(n):
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
                c_in = c
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 49, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096),
            nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class _DenseLayer(nn.Module):
    def __init__(self, c_in, growth=32, bn_size=4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        new = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return torch.cat([x, new], 1)


class DenseNet121(nn.Module):
    """torchvision.models.densenet121's architecture and state-dict keys."""

    def __init__(self, num_classes=1000, growth=32, blocks=(6, 12, 24, 16)):
        super().__init__()
        f = nn.Sequential()
        f.add_module("conv0", nn.Conv2d(3, 64, 7, 2, 3, bias=False))
        f.add_module("norm0", nn.BatchNorm2d(64))
        f.add_module("relu0", nn.ReLU(inplace=True))
        f.add_module("pool0", nn.MaxPool2d(3, 2, 1))
        c = 64
        for i, n in enumerate(blocks):
            block = nn.Sequential()
            for j in range(n):
                block.add_module(f"denselayer{j + 1}", _DenseLayer(c + j * growth, growth))
            f.add_module(f"denseblock{i + 1}", block)
            c += n * growth
            if i < len(blocks) - 1:
                t = nn.Sequential()
                t.add_module("norm", nn.BatchNorm2d(c))
                t.add_module("relu", nn.ReLU(inplace=True))
                t.add_module("conv", nn.Conv2d(c, c // 2, 1, bias=False))
                t.add_module("pool", nn.AvgPool2d(2, 2))
                f.add_module(f"transition{i + 1}", t)
                c //= 2
        f.add_module("norm5", nn.BatchNorm2d(c))
        self.features = f
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(F.relu(self.features(x)), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class BasicConv2d(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, c_in, ch1, ch3r, ch3, ch5r, ch5, proj):
        super().__init__()
        self.branch1 = BasicConv2d(c_in, ch1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(c_in, ch3r, 1), BasicConv2d(ch3r, ch3, 3, 1, 1))
        self.branch3 = nn.Sequential(BasicConv2d(c_in, ch5r, 1), BasicConv2d(ch5r, ch5, 3, 1, 1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                     BasicConv2d(c_in, proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    """torchvision.models.googlenet's architecture and state-dict keys as its pretrained
    weights load (``aux_logits=False``, ``transform_input=True``)."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = BasicConv2d(3, 64, 7, 2, 3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):  # torchvision's _transform_input, then the network
        x = torch.cat([x[:, i:i + 1] * (s / 0.5) + (m - 0.5) / 0.5 for i, (m, s) in enumerate(
            zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))], 1)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for name in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(self, f"inception{name}")(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
