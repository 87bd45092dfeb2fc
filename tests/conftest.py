"Test settings: one torch thread per test process (two 2-thread processes on 2 cores can run 80x slower)."
import os
for v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'): os.environ.setdefault(v, '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
import torch
torch.set_num_threads(1)
