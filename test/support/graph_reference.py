# Float64 PyTorch oracle for layer graphs (test/engine/graph-gradcheck.test.ts): reads the normalised spec,
# the parameters and the batch an analysis returned with include: ["parameters", "batch"] (tfjs layouts,
# NHWC), rebuilds the network in PyTorch (NCHW) and prints, per dense/conv2d row in graph order, the norm of
# dLoss/dW, dLoss/db and the backprop signal sqrt(B)*||dLoss/dh|| at the row's output.
import json, math, sys
import torch
import torch.nn.functional as F
from torch_common import t, act, same_pad, print_report

torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
spec, params, batch = req['spec'], req['parameters'], req['batch']
net = spec['network']

rows = []  # (weight, bias, probe) per row, in graph order
norm_params = {}  # path -> (gamma, beta)
for p in params:
    w = t(p['weights'])
    if w.dim() == 4:
        w = w.permute(3, 2, 0, 1).contiguous()  # [kh][kw][cin][cout] -> [cout][cin][kh][kw]
    else:
        w = w.t().contiguous()  # [in][units] -> [units][in]
    w.requires_grad_(True)
    b = t(p['bias']).requires_grad_(True) if p['bias'] is not None else None
    rows.append({'w': w, 'b': b, 'path': p.get('path')})
aux_by_row = {p['index']: p.get('auxParameters', []) for p in params}

state = {'row': 0, 'norm_row': -1}
probes = []
norm_list = []  # (path, row) in order of appearance, to pair with the aux gamma/beta of each row

def weight_layer(layer, x):
    r = rows[state['row']]
    state['row'] += 1
    if layer['kind'] == 'dense':
        h = x @ r['w'].t()
    else:
        k, s = layer['kernel'], layer.get('stride', 1)
        d = layer.get('dilation', 1)
        pad = layer.get('padding', 'same')
        if pad == 'same':
            x = same_pad(x, k, s, d)
        elif pad != 'valid':
            x = F.pad(x, (pad, pad, pad, pad))
        h = F.conv2d(x, r['w'], stride=s, dilation=d)
    if r['b'] is not None:
        h = h + (r['b'] if layer['kind'] == 'dense' else r['b'].view(1, -1, 1, 1))
    probe = torch.zeros_like(h, requires_grad=True)
    probes.append(probe)
    state['norm_row'] = state['row'] - 1
    return h + probe

aux_cursor = {}
def norm(kind, x):
    row = state['norm_row']
    i = aux_cursor.get(row, 0)
    aux = aux_by_row[row]
    gamma, beta = t(aux[i]['values']), t(aux[i + 1]['values'])
    aux_cursor[row] = i + 2
    if kind == 'batch_norm':
        dims = [0, 2, 3] if x.dim() == 4 else [0]
    else:
        dims = list(range(1, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
    return (x - mean) / torch.sqrt(var + 1e-5) * gamma.view(shape) + beta.view(shape)

def run(layers, x):
    for layer in layers:
        k = layer['kind']
        if k in ('dense', 'conv2d'):
            x = weight_layer(layer, x)
        elif k == 'max_pool':
            x = F.max_pool2d(x, layer['size'], layer.get('stride', layer['size']))
        elif k == 'avg_pool':
            x = F.avg_pool2d(x, layer['size'], layer.get('stride', layer['size']))
        elif k == 'global_avg_pool':
            x = x.mean(dim=(2, 3))
        elif k == 'flatten':
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1) if x.dim() == 4 else x
        elif k in ('batch_norm', 'layer_norm'):
            x = norm(k, x)
        elif k == 'residual':
            inp = x
            branch = run(layer['layers'], x)
            if layer.get('shortcut', 'identity') == 'projection':
                proj = {'kind': 'conv2d' if inp.dim() == 4 else 'dense', 'kernel': 1, 'padding': 'same',
                        'stride': max(1, round(inp.shape[2] / branch.shape[2])) if inp.dim() == 4 else 1}
                skip = weight_layer(proj, inp)
            else:
                skip = inp
            x = skip + layer.get('scale', 1) * branch
        x = act(layer.get('activation'), x)
    return x

xs = t(batch['x'])
if xs.dim() == 4:
    xs = xs.permute(0, 3, 1, 2)  # NHWC -> NCHW
ys = t(batch['y'])
logits_src = net['layers']
out = run(logits_src, xs)
# Categorical cross-entropy on softmax output, from the head's logits for stability.
head_logits = probes[-1]  # unused handle: the loss is recomputed from out
loss = -(ys * torch.log(out)).sum() / xs.shape[0]
print_report(loss, rows, probes, xs.shape[0])
