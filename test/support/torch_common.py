# What the PyTorch float64 reference scripts share (graph_reference.py, graph_train_reference.py,
# transformer_reference.py): float64 tensors, the activations by gradlens' names, TensorFlow's "same"
# padding, and the per-row gradient report the gradchecks compare with. Imported from the scripts' folder.
import json, math
import torch
import torch.nn.functional as F

def t(a):
    return torch.tensor(a, dtype=torch.float64)

def act(name, x):
    name = name['name'] if isinstance(name, dict) else name
    if name in (None, 'linear'):
        return x
    return {'relu': torch.relu, 'tanh': torch.tanh, 'sigmoid': torch.sigmoid, 'elu': F.elu, 'gelu': F.gelu,
            'softmax': lambda v: torch.softmax(v, dim=-1)}[name](x)

def same_pad(x, k, s, d=1):
    # TensorFlow's "same": total padding max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0), the extra row at the end.
    h, w = x.shape[2], x.shape[3]
    kh, kw = (k, k) if isinstance(k, int) else k  # k or [kh, kw]
    ph = max((math.ceil(h / s) - 1) * s + (kh - 1) * d + 1 - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + (kw - 1) * d + 1 - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

def print_report(loss, rows, probes, batch):
    """Prints {loss, rows}: per row its weight and bias gradient norms and √B·‖∂L/∂h‖ at its output (probes)."""
    params = [p for r in rows for p in (r['w'], r['b']) if p is not None]
    grads = torch.autograd.grad(loss, params + probes)
    gi = 0
    report = []
    for r in rows:
        gw = grads[gi]; gi += 1
        gb = None
        if r['b'] is not None:
            gb = grads[gi]; gi += 1
        report.append({'weightGradNorm': gw.norm().item(), 'biasGradNorm': None if gb is None else gb.norm().item()})
    for i, g in enumerate(grads[gi:]):
        report[i]['backpropNorm'] = math.sqrt(batch) * g.norm().item()
    print(json.dumps({'loss': loss.item(), 'rows': report}))
