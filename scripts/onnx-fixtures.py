#!/usr/bin/python3
"""ONNX fixtures for gradlens's importer (src/engine/import), made by PyTorch itself.

Builds small seeded PyTorch models, exports each with torch.onnx.export in TRAINING mode (BatchNormalization
nodes and state_dict names kept; do_constant_folding=False), and writes beside each <name>.onnx a <name>.json
with the fixed input batch, the targets, and PyTorch's own loss and per-parameter gradient norms
(named_parameters, i.e. state_dict names) computed by autograd in float32 and in float64.

Run with Debian's torch: /usr/bin/python3 scripts/onnx-fixtures.py [--out test/fixtures/onnx]
With --mnist-batch FILE (from scripts/mnist-batch.ts: the MNIST digits gradlens draws for a seed) it builds
only mnist_cnn, a 1x28x28 model, on exactly that batch (test/fixtures/onnx-mnist: the API's data.source mnist).
(test/engine/onnx-import.test.ts also runs it into a temporary folder, when torch is there, and compares
against the float64 figures of that fresh export). Needs no `onnx` Python package.
"""
import argparse
import copy
import io
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    """Gemm, Relu, Tanh."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 12)
        self.out = nn.Linear(12, 4)

    def forward(self, x):
        return self.out(torch.tanh(self.fc2(F.relu(self.fc1(x)))))


class CnnBn(nn.Module):
    """Conv (pads, strides, dilation, groups), BatchNormalization in training mode, MaxPool, AveragePool,
    GlobalAveragePool, Flatten."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.conv3 = nn.Conv2d(6, 6, (3, 2), padding=(1, 0))
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.avg_pool2d(F.relu(self.conv3(x)), 2, stride=1, padding=1)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class Residual(nn.Module):
    """A ResNet basic block (conv-BN-relu-conv-BN + identity, relu) between a stem and a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(4)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        x = F.relu(x + y)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class GeluLn(nn.Module):
    """GELU (Erf), LayerNorm: LayerNormalization at opset 17, its decomposition (ReduceMean, Sub, Pow, Sqrt,
    Div) below it."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.ln = nn.LayerNorm(10)
        self.fc2 = nn.Linear(10, 10)
        self.ln2 = nn.LayerNorm(10)
        self.head = nn.Linear(10, 3)

    def forward(self, x):
        x = self.ln(F.gelu(self.fc1(x)))
        x = self.ln2(x + F.gelu(self.fc2(x)))
        return self.head(x)


class Activations(nn.Module):
    """LeakyRelu, Elu, Selu, Softplus, HardSigmoid, HardSwish, Clip, Sigmoid; ends in Softmax."""

    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(7 if i == 0 else 9, 9) for i in range(8)])
        self.head = nn.Linear(9, 4)

    def forward(self, x):
        acts = [lambda t: F.leaky_relu(t, 0.1), F.elu, F.selu, F.softplus, F.hardsigmoid, F.hardswish,
                lambda t: torch.clamp(t, -0.5, 0.7), torch.sigmoid]
        for fc, act in zip(self.fcs, acts):
            x = act(fc(x))
        return F.softmax(self.head(x), dim=1)


class Shapes(nn.Module):
    """Shape arithmetic (view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat, Reshape), Split (chunk),
    Slice, Pad, Transpose, MatMul with a parameter, Squeeze/Unsqueeze, Dropout, Sub/Mul/Div, Sqrt, Pow;
    ends in LogSoftmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.drop = nn.Dropout(0.5)
        self.proj = nn.Parameter(torch.randn(8, 5) * 0.4)
        self.scale = nn.Parameter(torch.rand(5) + 0.5)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        x = F.pad(x, (1, 1, 0, 1))
        x = torch.relu(self.conv(x))            # N, 4, 5, 6
        a, b = torch.chunk(x, 2, dim=1)         # Split
        x = torch.cat([a * b, a - b[:, :, :, :]], dim=1)[:, :, 1:4, :]  # Mul, Sub, Concat, Slice
        x = x.transpose(1, 3)                   # Transpose
        x = x.reshape(x.size(0), x.size(1), -1)  # Shape/Gather/Concat/Reshape: N, 6, 12
        x = x.mean(dim=2, keepdim=True).squeeze(2)  # ReduceMean, Squeeze: N, 6
        x = torch.cat([x, torch.sqrt(x * x + 1.0)[:, :2]], dim=1)  # Sqrt, Slice: N, 8
        x = self.drop(x)
        x = torch.matmul(x.unsqueeze(1), self.proj).squeeze(1)  # Unsqueeze, MatMul: N, 5
        x = torch.pow(x, 2) / (1.0 + self.scale) + x
        return F.log_softmax(self.fc(x), dim=1)


class Ops(nn.Module):
    """Depthwise Conv (groups = channels, multiplier 2), MaxPool with pads and ceil_mode, AveragePool without
    the pads in its count and ceil_mode, Split with sizes, Slice with a step, Conv 1-D, a flip (Slice with
    step -1)."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(4, 8, 3, padding=1, groups=4)
        self.pw = nn.Conv2d(8, 4, 1)
        self.c1 = nn.Conv1d(4, 3, 3, padding=1)
        self.fc = nn.Linear(18, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.dw(x)), 3, stride=2, padding=1, ceil_mode=True)              # N, 8, 5, 5
        x = F.avg_pool2d(self.pw(x), 2, stride=2, padding=1, ceil_mode=True, count_include_pad=False)  # N, 4, 3, 3
        a, b = torch.split(x, [1, 3], dim=1)
        x = torch.cat([b, a], dim=1)[:, :, ::2, :]                                                 # N, 4, 2, 3
        x = torch.tanh(self.c1(x.flatten(2)))                                                      # N, 3, 6
        return self.fc(torch.flip(x, [2]).flatten(1))


class Regression(nn.Module):
    """Gemm without bias, Elu, a mean-squared-error target."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 7, bias=False)
        self.fc2 = nn.Linear(7, 2)

    def forward(self, x):
        return self.fc2(F.elu(self.fc1(x)))


class MnistCnn(nn.Module):
    """A 1x28x28 input (MNIST as PyTorch lays it out): Conv, BatchNormalization, Relu, Flatten, Gemm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 12 * 12, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.bn(self.conv(x))), 1))


# name, model class, opset, input shape, loss (cross_entropy: targets are class indices; mse: targets are values),
# classes (for cross_entropy), what the graph's output is (logits, softmax or log_softmax).
FIXTURES = [
    ('mlp', Mlp, 13, [6, 8], 'cross_entropy', 4, 'logits'),
    ('cnn_bn', CnnBn, 14, [4, 1, 10, 10], 'cross_entropy', 3, 'logits'),
    ('residual', Residual, 15, [4, 2, 6, 6], 'cross_entropy', 5, 'logits'),
    ('gelu_ln', GeluLn, 17, [5, 6], 'cross_entropy', 3, 'logits'),
    ('gelu_ln_opset13', GeluLn, 13, [5, 6], 'cross_entropy', 3, 'logits'),
    ('activations', Activations, 14, [6, 7], 'cross_entropy', 4, 'softmax'),
    ('shapes', Shapes, 13, [3, 3, 5, 6], 'cross_entropy', 3, 'log_softmax'),
    ('regression', Regression, 16, [6, 5], 'mse', 0, 'logits'),
    ('ops', Ops, 13, [3, 4, 9, 9], 'cross_entropy', 3, 'logits'),
]


def loss_of(out, target, loss, output):
    if loss == 'mse':
        return F.mse_loss(out, target)
    if output == 'softmax':
        return F.nll_loss(torch.log(out), target)
    if output == 'log_softmax':
        return F.nll_loss(out, target)
    return F.cross_entropy(out, target)


def reference(model, x, target, loss, output, dtype, train=True):
    """PyTorch's loss and gradient norms on a copy (training mode, or eval: BN on running statistics;
    dropout off either way, as gradlens measures)."""
    m = copy.deepcopy(model).to(dtype)
    m.train(train)
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.eval()
    t = target.to(dtype) if loss == 'mse' else target
    value = loss_of(m(x.to(dtype)), t, loss, output)
    value.backward()
    grads = {n: float(p.grad.norm()) for n, p in m.named_parameters()}
    return float(value), grads


def resnet18():
    import torchvision
    return torchvision.models.resnet18(num_classes=10)


def build(name, cls, opset, shape, loss, classes, output, out_dir, batch=None):
    torch.manual_seed(sum(map(ord, name)))
    model = cls()
    x = torch.randn(*shape)
    if loss == 'mse':
        target = torch.randn(shape[0], 2)
    else:
        target = torch.randint(0, classes, (shape[0],))
    if batch is not None:
        # The digits and labels gradlens draws (scripts/mnist-batch.ts), so the figures are for that batch.
        x = torch.tensor(batch['data'], dtype=torch.float32).reshape(*shape)
        target = torch.tensor(batch['labels'], dtype=torch.int64)
    has_bn = any(isinstance(mod, nn.BatchNorm2d) for mod in model.modules())
    if has_bn:
        # Running statistics away from their initial 0 and 1, so that eval mode differs from a no-op.
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(*shape) * 3 + 2)
    loss32, grads32 = reference(model, x, target, loss, output, torch.float32)
    loss64, grads64 = reference(model, x, target, loss, output, torch.float64)
    buf = io.BytesIO()
    # The export traces a forward pass in training mode, which moves the copy's running statistics once
    # more: the file holds the copy's state, so the eval-mode reference below is taken on the copy.
    exported = copy.deepcopy(model)
    torch.onnx.export(exported, x, buf, opset_version=opset, input_names=['input'], output_names=['output'],
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
    with open(os.path.join(out_dir, f'{name}.onnx'), 'wb') as f:
        f.write(buf.getvalue())
    params = [{'name': n, 'shape': list(p.shape), 'norm': float(p.detach().double().norm()),
               'gradNorm32': grads32[n], 'gradNorm64': grads64[n]} for n, p in model.named_parameters()]
    record = {
        'name': name, 'opset': opset, 'torch': torch.__version__, 'loss': loss, 'output': output,
        'input': {'shape': shape, 'data': [float(v) for v in x.flatten()]},
        'target': [float(v) for v in target.flatten()] if loss == 'mse' else [int(v) for v in target],
        'targetShape': list(target.shape),
        'loss32': loss32, 'loss64': loss64, 'parameters': params,
    }
    if batch is not None:
        record['mnist'] = {'batchSize': batch['batchSize'], 'seed': batch['seed'], 'normalize': batch['normalize']}
    if has_bn:
        eval_loss, eval_grads = reference(exported, x, target, loss, output, torch.float64, train=False)
        record['eval'] = {'loss64': eval_loss, 'gradNorm64': eval_grads}
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(record, f, indent=1)
        f.write('\n')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'onnx'))
    parser.add_argument('--resnet18', action='store_true',
                        help="torchvision's resnet18(num_classes=10) instead of the fixtures (45 MB: not committed)")
    parser.add_argument('--shape', default='4,3,64,64', help='the input batch shape of --resnet18')
    parser.add_argument('--mnist-batch', help='JSON from scripts/mnist-batch.ts: build only mnist_cnn on that batch')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.mnist_batch:
        with open(args.mnist_batch) as f:
            batch = json.load(f)
        build('mnist_cnn', MnistCnn, 13, batch['shape'], 'cross_entropy', 10, 'logits', args.out, batch)
        return
    if args.resnet18:
        build('resnet18', resnet18, 13, [int(d) for d in args.shape.split(',')], 'cross_entropy', 10, 'logits', args.out)
        return
    for fixture in FIXTURES:
        build(*fixture, args.out)


if __name__ == '__main__':
    main()
