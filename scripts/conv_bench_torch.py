# The PyTorch side of scripts/conv-bench.ts: the same convolution and pooling kernels, one thread, timed on request.
#
#   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 scripts/conv_bench_torch.py
#
# Reads one JSON request per line on stdin, answers "@@bench {json}" on stdout:
#   {"op": "setup", "kernel": "Conv2DBackpropFilter", "x": [n, h, w, c], "w": [kh, kw, c, cout], "stride": 1, "pad": 1}
#   {"op": "sample"}   -> {"wallMs", "cpuMs"} of one call of the kernel set up last
#   {"op": "exit"}
# Shapes arrive in tfjs's NHWC / [kh][kw][cin][cout] terms and are built in PyTorch's own NCHW /
# [cout][cin][kh][kw] layout, the one its kernels are written for. Backward kernels are the ones autograd
# calls (aten::convolution_backward with one output asked for, max_pool2d_with_indices_backward,
# avg_pool2d_backward), so each row times the same work as the tfjs kernel of that name.
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)


def resnet20_step(n):
    """ResNet-20 on [n, 1, 28, 28] (stages 16/32/64, 3 blocks each, batch-statistics BN without affine,
    1x1 stride-2 projections), global average pool, dense 64 -> 10; gradients of sum(logits * r) with
    respect to every weight, as scripts/conv-bench.ts's ResNet20Step does in tfjs."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 28, 28, generator=g)
    ws, plan = [], []

    def conv_w(cin, cout, k):
        ws.append((torch.randn(cout, cin, k, k, generator=g) * (2.0 / (k * k * cin)) ** 0.5).requires_grad_(True))
        return len(ws) - 1

    stem = conv_w(1, 16, 3)
    cin = 16
    for stage, cout in enumerate([16, 32, 64]):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            proj = conv_w(cin, cout, 1) if stride == 2 else None
            plan.append((conv_w(cin, cout, 3), conv_w(cout, cout, 3), proj, stride))
            cin = cout
    ws.append(torch.randn(64, 10, generator=g).requires_grad_(True))
    r = torch.randn(n, 10, generator=g)

    def bn(v):
        var, mean = torch.var_mean(v, dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (v - mean) / torch.sqrt(var + 1e-5)

    def step():
        h = F.relu(bn(F.conv2d(x, ws[stem], padding=1)))
        for a, b, proj, stride in plan:
            y = F.relu(bn(F.conv2d(h, ws[a], stride=stride, padding=1)))
            y = bn(F.conv2d(y, ws[b], padding=1))
            short = h if proj is None else F.conv2d(h, ws[proj], stride=2)
            h = F.relu(y + short)
        logits = h.mean(dim=(2, 3)) @ ws[-1]
        return torch.autograd.grad((logits * r).sum(), ws)

    return step


def build(req):
    if req["kernel"] == "ResNet20Step":
        return resnet20_step(req["x"][0])
    n, h, w, c = req["x"]
    s, p = req.get("stride", 1), req.get("pad", 0)
    x = torch.randn(n, c, h, w)
    kernel = req["kernel"]
    if kernel.startswith("Conv2D") or kernel == "ConvLayerStep":
        kh, kw, _, cout = req["w"]
        wt = torch.randn(cout, c, kh, kw)
        y = F.conv2d(x, wt, stride=s, padding=p)
        dy = torch.randn_like(y)
        conv_bw = torch.ops.aten.convolution_backward

        def backward(mask):
            return conv_bw(dy, x, wt, None, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)

        if kernel == "Conv2D":
            return lambda: F.conv2d(x, wt, stride=s, padding=p)
        if kernel == "Conv2DBackpropInput":
            return lambda: backward([True, False, False])
        if kernel == "Conv2DBackpropFilter":
            return lambda: backward([False, True, False])
        xg, wg = x.clone().requires_grad_(True), wt.clone().requires_grad_(True)

        def step():  # forward + both gradients through autograd, as tf.grads does
            out = F.conv2d(xg, wg, stride=s, padding=p)
            return torch.autograd.grad(out, [xg, wg], dy)

        return step
    k = req.get("size", 2)
    if kernel in ("MaxPool", "MaxPoolGrad"):
        y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        dy = torch.randn_like(y)
        if kernel == "MaxPool":
            return lambda: F.max_pool2d(x, k, s, p)
        return lambda: torch.ops.aten.max_pool2d_with_indices_backward(dy, x, [k, k], [s, s], [p, p], [1, 1], False, idx)
    if kernel in ("AvgPool", "AvgPoolGrad"):
        dy = torch.randn_like(F.avg_pool2d(x, k, s, p))
        if kernel == "AvgPool":
            return lambda: F.avg_pool2d(x, k, s, p)
        return lambda: torch.ops.aten.avg_pool2d_backward(dy, x, [k, k], [s, s], [p, p], False, True, None)
    if kernel == "Mean":  # batch-norm statistics over (n, h, w)
        return lambda: x.mean(dim=(0, 2, 3))
    if kernel == "Moments":
        return lambda: torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
    raise ValueError(f"unknown kernel {kernel}")


def main():
    fn = None
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "exit":
            print("@@bench {}", flush=True)
            return
        if req["op"] == "setup":
            fn = build(req)
            fn()
            print("@@bench " + json.dumps({"ok": True, "threads": torch.get_num_threads()}), flush=True)
            continue
        c, t = time.process_time(), time.perf_counter()
        fn()
        wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
        print("@@bench " + json.dumps({"wallMs": wall, "cpuMs": cpu}), flush=True)


if __name__ == "__main__":
    main()
