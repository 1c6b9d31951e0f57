# Float64 PyTorch oracle for trainings of layer graphs (test/engine/graph-training.test.ts): reads the
# normalised training spec, the initial parameters and the minibatches a training returned with
# include: ["parameters", "batches"] (tfjs layouts, NHWC), rebuilds the network in PyTorch (NCHW), runs the
# same steps with torch.optim (SGD, momentum, Adam, RMSprop) and prints per step the minibatch loss and each row's weight-gradient
# norm, and at the end every parameter in the tfjs layout (kernels [kh][kw][c_in][c_out], dense [in][units]).
import json, math, sys
import torch
import torch.nn.functional as F
from torch_common import t, act, same_pad

torch.set_default_dtype(torch.float64)
req = json.load(sys.stdin)
spec, params, batches = req['spec'], req['parameters'], req['batches']
net = spec['network']
opt_cfg = spec['optimizer']

rows = []
for p in params:
    w = t(p['weights'])
    w = w.permute(3, 2, 0, 1).contiguous() if w.dim() == 4 else w.t().contiguous()
    rows.append({
        'w': w.requires_grad_(True),
        'b': t(p['bias']).requires_grad_(True) if p['bias'] is not None else None,
        # Every auxiliary parameter the row reports, in order (what 'final' gives back) ...
        'aux': [t(a['values']).requires_grad_(True) for a in p.get('auxParameters', [])],
        'aux_names': [a['name'] for a in p.get('auxParameters', [])],
        'conv': w.dim() == 4,
    })

class Forward:
    def __init__(self):
        self.row = 0
        self.norm_row = -1
        self.aux_cursor = {}

    def scalar(self, r, name):
        # ... the residual variants' scalars by name: Fixup's biases on every branch row, gate/fixup_scale on the last.
        return r['aux'][r['aux_names'].index(name)] if name in r['aux_names'] else None

    def weight_layer(self, layer, x):
        r = rows[self.row]
        self.norm_row = self.row
        self.last_row = r
        self.row += 1
        bias_in = self.scalar(r, 'fixup_bias_in')
        if bias_in is not None:
            x = x + bias_in
        if layer['kind'] == 'dense':
            h = x @ r['w'].t()
        else:
            k, s, d = layer['kernel'], layer.get('stride', 1), layer.get('dilation', 1)
            pad = layer.get('padding', 'same')
            if pad == 'same':
                x = same_pad(x, k, s, d)
            elif pad != 'valid':
                x = F.pad(x, (pad, pad, pad, pad))
            h = F.conv2d(x, r['w'], stride=s, dilation=d)
        if r['b'] is not None:
            h = h + (r['b'] if layer['kind'] == 'dense' else r['b'].view(1, -1, 1, 1))
        bias_act = self.scalar(r, 'fixup_bias_act')
        return h if bias_act is None else h + bias_act

    def norm(self, kind, x):
        # The row's gamma/beta pairs in order (gamma always comes first: the graph's norms precede its scalars).
        i = self.aux_cursor.get(self.norm_row, 0)
        names = rows[self.norm_row]['aux_names']
        gi = [j for j, n in enumerate(names) if n == 'gamma'][i]
        gamma, beta = rows[self.norm_row]['aux'][gi], rows[self.norm_row]['aux'][gi + 1]
        self.aux_cursor[self.norm_row] = i + 1
        dims = ([0, 2, 3] if x.dim() == 4 else [0]) if kind == 'batch_norm' else list(range(1, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        shape = (1, -1, 1, 1) if x.dim() == 4 else (1, -1)
        return (x - mean) / torch.sqrt(var + 1e-5) * gamma.view(shape) + beta.view(shape)

    def run(self, layers, x):
        for layer in layers:
            k = layer['kind']
            if k in ('dense', 'conv2d'):
                x = self.weight_layer(layer, x)
            elif k == 'max_pool':
                x = F.max_pool2d(x, layer['size'], layer.get('stride', layer['size']))
            elif k == 'avg_pool':
                x = F.avg_pool2d(x, layer['size'], layer.get('stride', layer['size']))
            elif k == 'global_avg_pool':
                x = x.mean(dim=(2, 3))
            elif k == 'flatten':
                x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1) if x.dim() == 4 else x
            elif k in ('batch_norm', 'layer_norm'):
                x = self.norm(k, x)
            elif k == 'residual':
                inp = x
                branch = self.run(layer['layers'], x)
                variant = layer.get('variant', 'plain')
                gate = None if variant == 'plain' else self.scalar(self.last_row, 'fixup_scale' if variant == 'fixup' else 'gate')
                if layer.get('shortcut', 'identity') == 'projection':
                    proj = {'kind': 'conv2d' if inp.dim() == 4 else 'dense', 'kernel': 1, 'padding': 'same',
                            'stride': max(1, round(inp.shape[2] / branch.shape[2])) if inp.dim() == 4 else 1}
                    skip = self.weight_layer(proj, inp)
                else:
                    skip = inp
                x = skip + (layer.get('scale', 1) if gate is None else gate) * branch
            x = act(layer.get('activation'), x)
        return x

examples = batches['examples']
by_index = {i: (x, y) for i, x, y in zip(examples['index'], examples['x'], examples['y'])}
shape = net['input']
plist = [p for r in rows for p in [r['w']] + ([r['b']] if r['b'] is not None else []) + r['aux']]
def optimizer(config, params):
    # torch.optim's own update rules, with the training's normalised optimizer settings.
    name, lr = config['name'], config['learningRate']
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr)
    if name == 'momentum':
        return torch.optim.SGD(params, lr=lr, momentum=config['momentum'], nesterov=config.get('nesterov', False))
    if name == 'adam':
        return torch.optim.Adam(params, lr=lr, betas=(config['beta1'], config['beta2']), eps=config['epsilon'])
    if name == 'rmsprop':
        return torch.optim.RMSprop(params, lr=lr, alpha=config['rho'], eps=config['epsilon'], momentum=config.get('momentum', 0))
    raise ValueError(f'unknown optimizer {name}')

opt = optimizer(opt_cfg, plist)
steps = []
for s in range(spec['steps']):
    idx = batches['indices'][s]
    xs = t([by_index[i][0] for i in idx]).view(len(idx), *shape)
    if xs.dim() == 4:
        xs = xs.permute(0, 3, 1, 2)  # NHWC -> NCHW
    ys = t([by_index[i][1] for i in idx])
    out = Forward().run(net['layers'], xs)
    loss = -(ys * torch.log(out)).sum() / xs.shape[0]
    opt.zero_grad()
    loss.backward()
    steps.append({'loss': loss.item(), 'weightGradNorms': [r['w'].grad.norm().item() for r in rows]})
    opt.step()

def tf_layout(r):
    w = r['w'].detach()
    w = w.permute(2, 3, 1, 0) if r['conv'] else w.t()
    return {'weights': w.reshape(-1).tolist(), 'bias': None if r['b'] is None else r['b'].detach().tolist(),
            'aux': [a.detach().tolist() for a in r['aux']]}

print(json.dumps({'steps': steps, 'final': [tf_layout(r) for r in rows]}))
