# PyTorch oracle for trainings of uploaded ONNX models (test/api/model-trainings.test.ts): rebuilds a fixture
# model of scripts/onnx-fixtures.py from its seed (the parameters its committed .onnx holds), trains it on the
# fixture's own batch with torch.optim in the requested dtype, and prints per step the batch loss and every
# named parameter's norm and gradient norm before that step's update (state_dict names: the ONNX initializers).
import importlib.util, json, os, sys
import torch
import torch.nn as nn

req = json.load(sys.stdin)
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('onnx_fixtures', os.path.join(here, '..', '..', 'scripts', 'onnx-fixtures.py'))
fx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fx)
name = req['name']
# mnist_cnn is built apart, on the MNIST digits gradlens draws (test/fixtures/onnx-mnist).
rows = fx.FIXTURES + [('mnist_cnn', fx.MnistCnn, 13, None, 'cross_entropy', 10, 'logits')]
_, cls, _, _, loss, _, output = next(f for f in rows if f[0] == name)
folder = 'onnx-mnist' if name == 'mnist_cnn' else 'onnx'
dtype = torch.float64 if req.get('dtype', 'float64') == 'float64' else torch.float32

torch.manual_seed(sum(map(ord, name)))
model = cls().to(dtype)
model.train(req.get('mode', 'train') == 'train')
for mod in model.modules():
    if isinstance(mod, nn.Dropout):
        mod.eval()
fixture = json.load(open(os.path.join(here, '..', 'fixtures', folder, f'{name}.json')))
x = torch.tensor(fixture['input']['data'], dtype=dtype).reshape(*fixture['input']['shape'])
target = torch.tensor(fixture['target'], dtype=dtype).reshape(*fixture['targetShape']) if loss == 'mse' else torch.tensor(fixture['target'], dtype=torch.int64)

o = req['optimizer']
params = list(model.parameters())
if o['name'] == 'sgd':
    opt = torch.optim.SGD(params, lr=o['learningRate'])
elif o['name'] == 'momentum':
    opt = torch.optim.SGD(params, lr=o['learningRate'], momentum=o['momentum'], nesterov=o.get('nesterov', False))
elif o['name'] == 'adam':
    opt = torch.optim.Adam(params, lr=o['learningRate'], betas=(o['beta1'], o['beta2']), eps=o['epsilon'])
else:
    raise SystemExit(f"optimizer {o['name']} not replayed here")

steps = []
for step in range(req['steps'] + 1):
    opt.zero_grad()
    value = fx.loss_of(model(x), target, loss, output)
    value.backward()
    steps.append({
        'step': step, 'loss': float(value),
        'parameters': {n: {'norm': float(p.detach().norm()), 'gradNorm': float(p.grad.norm())} for n, p in model.named_parameters()},
    })
    if step < req['steps']:
        opt.step()
json.dump({'steps': steps}, sys.stdout)
