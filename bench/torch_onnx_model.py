# PyTorch's side of the R18-onnx benchmark row (bench/onnx-model.ts): torchvision's resnet18(num_classes=10), the
# model scripts/onnx-fixtures.py --resnet18 exports, on the batch that export stored beside it, in float32.
#
# One sample does what gradlens's analysis of the exported file computes at the least: forward in training mode
# (BN on batch statistics), cross-entropy on the logits, backward, every parameter's gradient norm read back
# as Python floats. Called from bench/torch_reference.py's make(); one thread (the caller sets it).
import json
import os
import tempfile

import torch
import torch.nn.functional as F

SHAPE = (4, 3, 64, 64)


def r18_dir():
    """The folder bench/onnx-model.ts exports into (os.tmpdir() there, tempfile.gettempdir() here)."""
    return os.path.join(tempfile.gettempdir(), "gradlens-bench-r18-" + "x".join(map(str, SHAPE)))


def make_r18():
    import torchvision
    path = os.path.join(r18_dir(), "resnet18.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the gradlens side exports ResNet-18 at its setup (bench/onnx-model.ts)")
    with open(path) as f:
        record = json.load(f)
    # The fixture script's seed, so that the weights are the exported ones (timing does not depend on them).
    torch.manual_seed(sum(map(ord, "resnet18")))
    model = torchvision.models.resnet18(num_classes=10).train()
    x = torch.tensor(record["input"]["data"], dtype=torch.float32).reshape(record["input"]["shape"])
    y = torch.tensor(record["target"], dtype=torch.int64)
    params = list(model.parameters())

    def analysis():
        for p in params:
            p.grad = None
        F.cross_entropy(model(x), y).backward()
        return torch.stack([p.grad.norm() for p in params]).tolist()
    return analysis
