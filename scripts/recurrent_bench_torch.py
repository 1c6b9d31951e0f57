# PyTorch doing scripts/recurrent-bench.ts's work: forward + backward of one recurrent layer and a dense head,
# batch 32, 100 steps, 32 features, 128 units, float32, one thread (as the native backend's OpenBLAS core).
# Run: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 scripts/recurrent_bench_torch.py [lstm|gru|simple_rnn]
import json, sys, time
import torch

torch.set_num_threads(1)
kind = sys.argv[1] if len(sys.argv) > 1 else 'lstm'
B, T, F, U = 32, 100, 32, 128
cls = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU, 'simple_rnn': torch.nn.RNN}[kind]
rnn, head = cls(F, U, batch_first=True), torch.nn.Linear(U, 1)
x = torch.randn(B, T, F)
def step():
    rnn.zero_grad(); head.zero_grad()
    out, _ = rnn(x)
    head(out[:, -1]).mean().backward()
step()
times = []
for _ in range(5):
    t0 = time.perf_counter(); step(); times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({'torch': torch.__version__, 'kind': kind, 'medianMs': times[2], 'minMs': times[0]}))
