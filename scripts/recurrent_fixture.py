# Writes test/fixtures/recurrent/pytorch-lstm-gru.json: PyTorch's nn.LSTM and nn.GRU (float64, seeded) with
# their parameters (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0), an input batch [batch][time][features]
# and PyTorch's output sequence. test/engine/recurrent-fixture.test.ts loads them into gradlens' layout
# (W = weight_ihᵀ, U = weight_hhᵀ; lstm bias = b_ih + b_hh, gru b_hh as recurrent_bias) and compares outputs.
# Run: /usr/bin/python3 scripts/recurrent_fixture.py
import json, os
import torch

torch.manual_seed(14)
torch.set_default_dtype(torch.float64)
B, T, F, U = 3, 12, 4, 5
out = {'generator': 'scripts/recurrent_fixture.py', 'torch': torch.__version__, 'batch': B, 'steps': T, 'features': F, 'units': U, 'cases': []}
x = torch.randn(B, T, F)
out['x'] = x.tolist()
for kind, cls in (('lstm', torch.nn.LSTM), ('gru', torch.nn.GRU)):
    m = cls(F, U, batch_first=True)
    # Larger than the default U(±1/√U) so that the gates leave their linear range.
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.9, 0.9)
    y, _ = m(x)
    out['cases'].append({
        'kind': kind,
        'weight_ih_l0': m.weight_ih_l0.tolist(), 'weight_hh_l0': m.weight_hh_l0.tolist(),
        'bias_ih_l0': m.bias_ih_l0.tolist(), 'bias_hh_l0': m.bias_hh_l0.tolist(),
        'output': y.detach().tolist(),
    })
path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'recurrent', 'pytorch-lstm-gru.json')
with open(path, 'w') as f:
    json.dump(out, f)
print('wrote', os.path.normpath(path))
