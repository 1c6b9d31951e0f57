# Replays gradlens trainings in PyTorch (float64) from what include: ["parameters", "batches"] returns.
#
#   /usr/bin/python3 test/support/replay_training.py < cases.json > replayed.json
#
# Input: a JSON list of {"spec": <the training's normalised spec echo>, "result": <its result>}.
# Output: a JSON list of {"losses": {step: loss}, "finalParameters": [...]} in gradlens's layout.
# The network is rebuilt from the spec's own words (schemas/spec.ts): dense layers h = (a + c_in)·W + b
# + c_act, batch/layer norm on hidden layers (torch.nn.functional.batch_norm / layer_norm), the hidden
# activation, residual blocks x + α·F(x) over hidden layers 1..depth-2 in runs of `every`, Fixup's
# linear branch ends; the optimiser is torch.optim's. Nothing here is taken from gradlens's code.
import json
import sys

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)


def activation(spec):
    name = spec["name"]
    alpha = spec.get("alpha")
    table = {
        "linear": lambda z: z,
        "relu": F.relu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "gelu": F.gelu,  # the exact erf form
        "elu": lambda z: F.elu(z, alpha if alpha is not None else 1.0),
        "leaky_relu": lambda z: F.leaky_relu(z, alpha if alpha is not None else 0.01),
        "selu": F.selu,
        "softplus": F.softplus,
        "softsign": F.softsign,
        "swish": F.silu,
        "silu": F.silu,
        "mish": F.mish,
        "relu6": F.relu6,
        "hard_sigmoid": lambda z: F.relu6(z + 3) / 6,
        "softmax": lambda z: torch.softmax(z, dim=1),
    }
    if name not in table:
        raise ValueError(f"replay_training.py: no PyTorch counterpart for activation {name}")
    return table[name]


def hidden_activations(net):
    act = net["activation"]
    return act if isinstance(act, list) else [act] * (net["depth"] - 1)


def residual_blocks(net):
    """Hidden-to-hidden layers 1..depth-2 in runs of `every`; a short tail stays plain."""
    every = net["residual"]["every"]
    if every <= 0:
        return []
    blocks, start = [], 1
    while start + every - 1 <= net["depth"] - 2:
        blocks.append(list(range(start, start + every)))
        start += every
    return blocks


class Replay:
    def __init__(self, spec, parameters):
        net = spec["network"]
        self.net = net
        self.loss_name = spec["loss"]
        self.depth = net["depth"]
        self.blocks = residual_blocks(net)
        self.variant = net["residual"].get("variant", "plain")
        self.scale = net["residual"]["scale"]
        self.normalization = net.get("normalization", "none")
        hidden = hidden_activations(net)
        self.acts = []
        for l in range(self.depth):
            block = self.block_of(l)
            if l == self.depth - 1:
                self.acts.append(activation(net["outputActivation"]))
            elif self.variant == "fixup" and block is not None and block[-1] == l:
                self.acts.append(activation({"name": "linear"}))  # Fixup's branch ends in the addition
            else:
                self.acts.append(activation(hidden[l]))
        self.params = []  # in gradlens's order: weights, biases, then each layer's auxiliary parameters
        self.W, self.b, self.aux = [], [], []
        for p in parameters:
            w = torch.tensor(p["weights"], dtype=torch.float64, requires_grad=True)
            self.W.append(w)
            b = torch.tensor(p["bias"], dtype=torch.float64, requires_grad=True) if p["bias"] is not None else None
            self.b.append(b)
            aux = {a["name"]: torch.tensor(a["values"], dtype=torch.float64, requires_grad=True) for a in p.get("auxParameters", [])}
            self.aux.append(aux)
        self.params = self.W + [b for b in self.b if b is not None] + [t for aux in self.aux for t in aux.values()]

    def block_of(self, l):
        for block in self.blocks:
            if l in block:
                return block
        return None

    def forward(self, x):
        a, block_input = x, None
        for l in range(self.depth):
            block = self.block_of(l)
            aux = self.aux[l]
            if block is not None and block[0] == l:
                block_input = a
            inp = a + aux["fixup_bias_in"] if "fixup_bias_in" in aux else a
            h = inp @ self.W[l]
            if self.b[l] is not None:
                h = h + self.b[l]
            if "fixup_bias_act" in aux:
                h = h + aux["fixup_bias_act"]
            z = h
            if self.normalization != "none" and l < self.depth - 1:
                gamma, beta = aux["gamma"], aux["beta"]
                if self.normalization == "batch":
                    z = F.batch_norm(h, None, None, gamma, beta, training=True, eps=1e-5)
                else:
                    z = F.layer_norm(h, (h.shape[1],), gamma, beta, eps=1e-5)
            logits = z
            post = self.acts[l](z)
            if block is not None and block[-1] == l:
                if self.variant in ("rezero", "skipinit"):
                    alpha = aux["gate"]
                elif self.variant == "fixup":
                    alpha = aux["fixup_scale"]
                else:
                    alpha = self.scale
                post = block_input + alpha * post
            a = post
        return logits, a

    def loss(self, x, y):
        logits, out = self.forward(x)
        name = self.loss_name
        if name == "output":
            return out.sum() / out.shape[0]
        if name == "mse":
            return F.mse_loss(out, y)
        if name == "categorical_crossentropy":
            if self.net["outputActivation"]["name"] != "softmax":
                raise ValueError("replay_training.py: categorical cross-entropy needs a softmax output")
            return -(y * F.log_softmax(logits, dim=1)).sum() / out.shape[0]
        if name == "binary_crossentropy":
            if self.net["outputActivation"]["name"] != "sigmoid":
                raise ValueError("replay_training.py: binary cross-entropy needs a sigmoid output")
            return F.binary_cross_entropy_with_logits(logits, y)
        raise ValueError(f"replay_training.py: unknown loss {name}")


def optimizer(config, params):
    name, lr = config["name"], config["learningRate"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=config["momentum"], nesterov=config.get("nesterov", False))
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(config["beta1"], config["beta2"]), eps=config["epsilon"])
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=config["rho"], eps=config["epsilon"], momentum=config.get("momentum", 0))
    raise ValueError(f"replay_training.py: unknown optimizer {name}")


def layout(replay):
    out = []
    for l in range(replay.depth):
        entry = {
            "index": l,
            "weights": replay.W[l].detach().tolist(),
            "bias": replay.b[l].detach().tolist() if replay.b[l] is not None else None,
        }
        if replay.aux[l]:
            entry["auxParameters"] = [{"name": k, "values": v.detach().reshape(-1).tolist()} for k, v in replay.aux[l].items()]
        out.append(entry)
    return out


def replay_case(case):
    spec, result = case["spec"], case["result"]
    for a in (p.get("auxParameters", []) for p in result["parameters"]):
        for entry in a:
            if entry["name"] not in ("gamma", "beta"):
                entry["values"] = entry["values"][0]  # scalars: a 0-d tensor, as gradlens's tf.scalar
    model = Replay(spec, result["parameters"])
    opt = optimizer(spec["optimizer"], model.params)
    examples = result["batches"]["examples"]
    row = {index: i for i, index in enumerate(examples["index"])}
    X = torch.tensor(examples["x"], dtype=torch.float64)
    Y = torch.tensor(examples["y"], dtype=torch.float64)
    recorded = {r["step"] for r in result["records"]}
    losses = {}
    indices = result["batches"]["indices"]
    for step in range(result["stepsCompleted"]):
        rows = torch.tensor([row[i] for i in indices[step]])
        opt.zero_grad()
        loss = model.loss(X[rows], Y[rows])
        if step in recorded:
            losses[step] = loss.item()
        loss.backward()
        opt.step()
    final = result["stepsCompleted"]
    with torch.no_grad():
        rows = torch.tensor([row[i] for i in indices[final]])
        losses[final] = model.loss(X[rows], Y[rows]).item()
    return {"losses": losses, "finalParameters": layout(model)}


def main():
    cases = json.load(sys.stdin)
    json.dump([replay_case(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
