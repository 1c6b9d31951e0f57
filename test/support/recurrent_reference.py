# Float64 PyTorch oracle for recurrent layer graphs (test/engine/recurrent-gradcheck.test.ts): reads the
# normalised spec, parameters and batch an analysis returned with include: ["parameters", "batch"], rebuilds
# every simple_rnn / lstm / gru with PyTorch's own cells (nn.RNNCell, nn.LSTMCell, nn.GRUCell: weight_ih =
# Wᵀ, weight_hh = Uᵀ, gate order [i, f, g, o] / [r, z, n]) stepped by hand so that every h_t keeps its
# gradient, then the dense head and the loss (mse or categorical cross-entropy), and prints the loss, per row
# ||dL/dW||, ||dL/db||, ||dL/dU|| (and a gru's ||dL/db_hh||), and per recurrent layer sqrt(B)*||dL/dh_t||.
import json, sys
import torch

torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
spec, params, batch = req['spec'], req['parameters'], req['batch']
t = lambda a: torch.tensor(a, dtype=torch.float64)

x = t(batch['x'])
y = t(batch['y'])
B = x.shape[0]
rows, steps = [], {}

def cell_of(layer, p):
    kind, units = layer['kind'], layer['units']
    w = t(p['weights'])  # [features][gates*units]
    aux = {a['name']: t(a['values']) for a in p.get('auxParameters', [])}
    u = aux['recurrent_kernel'].reshape(units, -1)
    F = w.shape[0]
    act = layer.get('activation', 'tanh')
    act = act['name'] if isinstance(act, dict) else act
    if kind == 'simple_rnn':
        cell = torch.nn.RNNCell(F, units, bias=True, nonlinearity={'tanh': 'tanh', 'relu': 'relu'}.get(act, 'tanh'))
    elif kind == 'lstm':
        cell = torch.nn.LSTMCell(F, units, bias=True)
    else:
        cell = torch.nn.GRUCell(F, units, bias=True)
    with torch.no_grad():
        cell.weight_ih.copy_(w.t())
        cell.weight_hh.copy_(u.t())
        cell.bias_ih.copy_(t(p['bias']) if p['bias'] is not None else torch.zeros(cell.bias_ih.shape))
        cell.bias_hh.copy_(aux['recurrent_bias'] if 'recurrent_bias' in aux else torch.zeros(cell.bias_hh.shape))
    if kind == 'simple_rnn' and act == 'linear':
        # nn.RNNCell has no identity nonlinearity: the same cell by hand.
        lin = lambda xt, h: xt @ cell.weight_ih.t() + cell.bias_ih + h @ cell.weight_hh.t() + cell.bias_hh
        return cell, lin
    return cell, cell

def run_recurrent(layer, p, a):
    cell, step = cell_of(layer, p)
    units = layer['units']
    h = torch.zeros(a.shape[0], units)
    c = torch.zeros(a.shape[0], units)
    hs = []
    for k in range(a.shape[1]):
        if layer['kind'] == 'lstm':
            h, c = step(a[:, k], (h, c))
        else:
            h = step(a[:, k], h)
        h.retain_grad()
        hs.append(h)
    steps[len(rows)] = hs
    rows.append({'kind': layer['kind'], 'cell': cell})
    return torch.stack(hs, 1) if layer.get('returnSequences', False) else h

a = x
for layer, p in zip(spec['network']['layers'], params):
    if layer['kind'] == 'dense':
        w = t(p['weights']).requires_grad_(True)
        b = t(p['bias']).requires_grad_(True)
        a = a @ w + b
        rows.append({'kind': 'dense', 'w': w, 'b': b})
    else:
        a = run_recurrent(layer, p, a)

if spec['loss'] == 'mse':
    loss = ((a - y) ** 2).mean()
else:
    loss = -(y * torch.log_softmax(a, dim=1)).sum(1).mean()
loss.backward()

out = []
for i, r in enumerate(rows):
    if r['kind'] == 'dense':
        out.append({'weightGradNorm': r['w'].grad.norm().item(), 'biasGradNorm': r['b'].grad.norm().item()})
    else:
        c = r['cell']
        row = {'weightGradNorm': c.weight_ih.grad.norm().item(), 'biasGradNorm': c.bias_ih.grad.norm().item(),
               'recurrentGradNorm': c.weight_hh.grad.norm().item(),
               'stepNorms': [(B ** 0.5) * h.grad.norm().item() for h in steps[i]]}
        if r['kind'] == 'gru':
            row['recurrentBiasGradNorm'] = c.bias_hh.grad.norm().item()
        out.append(row)
print(json.dumps({'loss': loss.item(), 'rows': out}))
