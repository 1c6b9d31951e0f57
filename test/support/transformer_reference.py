# Float64 PyTorch oracle for sequence layer graphs (test/engine/transformer-gradcheck.test.ts): reads the
# normalised spec (transformer_blocks written out as residual blocks and layer norms), the parameters and the
# batch an analysis returned with include: ["parameters", "batch"], rebuilds the network with PyTorch's own
# layers — F.embedding, F.multi_head_attention_forward (nn.MultiheadAttention's kernel: its in_proj_weight is
# [Wq; Wk; Wv] transposed, its causal mask a boolean upper triangle), F.layer_norm over the last axis — and
# prints per row (embedding, attention, dense) the norms of dLoss/dW, dLoss/db and sqrt(B)*||dLoss/dh||.
import json, math, sys
import torch
import torch.nn.functional as F
from torch_common import t, act, print_report

torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
spec, params, batch = req['spec'], req['parameters'], req['batch']
net = spec['network']

rows = [{'w': t(p['weights']).requires_grad_(True), 'b': t(p['bias']).requires_grad_(True) if p['bias'] is not None else None} for p in params]
aux_by_row = {p['index']: p.get('auxParameters', []) for p in params}
state = {'row': 0, 'norm_row': -1}
probes = []
aux_cursor = {}

def probe(h):
    p = torch.zeros_like(h, requires_grad=True)
    probes.append(p)
    state['norm_row'] = state['row'] - 1
    return h + p

def attention(layer, r, x):
    # x [B, T, D]; the row's weights are 4 rows: Wq, Wk, Wv ([D][H*k] flattened) and Wo ([H*k][D] flattened).
    B, T, D = x.shape
    H = layer['heads']
    hk = r['w'].shape[1] // D
    wq, wk, wv = (r['w'][m].view(D, hk) for m in range(3))
    wo = r['w'][3].view(hk, D)
    b = r['b']
    in_bias = b[: 3 * hk] if b is not None else None
    out_bias = b[3 * hk:] if b is not None else None
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1) if layer.get('causal') else None
    q = x.transpose(0, 1)  # [T, B, D]
    out, _ = F.multi_head_attention_forward(
        q, q, q, D, H, torch.cat([wq.t(), wk.t(), wv.t()], 0), in_bias, None, None, False, 0.0,
        wo.t(), out_bias, training=False, need_weights=False, attn_mask=mask)
    return out.transpose(0, 1)

def weight_layer(layer, x):
    r = rows[state['row']]
    state['row'] += 1
    k = layer['kind']
    if k == 'embedding':
        h = F.embedding(x.long(), r['w'])
    elif k == 'attention':
        h = attention(layer, r, x)
    else:
        h = x @ r['w']
        if r['b'] is not None:
            h = h + r['b']
    return probe(h)

def norm(x):
    row = state['norm_row']
    i = aux_cursor.get(row, 0)
    aux = aux_by_row[row]
    gamma, beta = t(aux[i]['values']), t(aux[i + 1]['values'])
    aux_cursor[row] = i + 2
    if x.dim() == 3:
        return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps=1e-5)
    dims = list(range(1, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * gamma + beta

def positions(x):
    _, T, D = x.shape
    pos = torch.arange(T, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(D) // 2
    angle = pos / torch.pow(10000.0, (2 * i).double() / D)
    pe = torch.where(torch.arange(D) % 2 == 0, torch.sin(angle), torch.cos(angle))
    return x + pe

def run(layers, x):
    for layer in layers:
        k = layer['kind']
        if k in ('dense', 'embedding', 'attention'):
            x = weight_layer(layer, x)
        elif k == 'positional_encoding':
            x = positions(x)
        elif k == 'global_avg_pool':
            x = x.mean(dim=1)
        elif k == 'flatten':
            x = x.reshape(x.shape[0], -1)
        elif k == 'layer_norm':
            x = norm(x)
        elif k == 'residual':
            x = x + layer.get('scale', 1) * run(layer['layers'], x)
        elif k not in ('dropout', 'activation'):
            raise ValueError('layer kind ' + k)
        x = act(layer.get('activation'), x)
    return x

xs = t(batch['x'])
ys = t(batch['y'])
out = run(net['layers'], xs)
B = xs.shape[0]
if spec['loss'] == 'binary_crossentropy':
    loss = -(ys * torch.log(out) + (1 - ys) * torch.log(1 - out)).sum() / B
else:
    loss = -(ys * torch.log(out)).sum() / B
print_report(loss, rows, probes, B)
