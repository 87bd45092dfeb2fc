#!/usr/bin/env bash
# The GPU check of issue 11, as one command on a lent device machine (Python 3.12, torch preinstalled):
#   bash ../shared/tools/device-wheels.sh            # here, once: fills .whl/
#   device run, carry [".whl"]:  bash benchmarks/device_scale.sh
# Writes into $OUT: the scale table/plot/CSV on the GPU and a log of the smoke run.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rm -rf /tmp/site; python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tail -3
export ANNDATA_ALLOW_WRITE_NULLABLE_STRINGS=1 PYTHONPATH=$PWD:/tmp/site OMP_NUM_THREADS=8 MKL_NUM_THREADS=8 OPENBLAS_NUM_THREADS=8 MPLBACKEND=Agg NUMBA_CACHE_DIR=/tmp/numba
python3 -c "import diffaug.tl, anndata, scanpy, fastai.basics, pynndescent" || { echo "imports failed"; exit 3; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 -c "import torch; print(torch.__version__)"; } > "$OUT/device.txt" 2>&1
# 1. smoke: default tl.embed on pbmc68k_reduced on the GPU, in memory and streamed from a backed file
timeout 150 python3 - > "$OUT/smoke.log" 2>&1 <<'PY'
import time, torch, anndata, scanpy as sc, numpy as np
from diffaug.tl import embed
from sklearn.neighbors import KNeighborsClassifier
from sklearn.model_selection import cross_val_score
a = sc.datasets.pbmc68k_reduced(); y = a.obs['bulk_labels'].cat.codes.values
for mode in ('memory', 'backed'):
    b = a.copy()
    if mode == 'backed': b.write_h5ad('/tmp/pbmc.h5ad'); b = anndata.read_h5ad('/tmp/pbmc.h5ad', backed='r')
    torch.cuda.synchronize(); t = time.perf_counter()
    embed(b, device='cuda', random_state=0, progress=False)
    torch.cuda.synchronize(); dt = time.perf_counter() - t
    z = b.obsm['X_diffaug']
    acc = cross_val_score(KNeighborsClassifier(5), z, y, cv=5).mean()
    print(f"SMOKE {mode}: tl.embed default on pbmc68k_reduced, cuda, {dt:.1f} s, 5-NN acc {100*acc:.1f}, phases {b.uns['X_diffaug']['phase_seconds']}", flush=True)
PY
echo "smoke rc=$?" >> "$OUT/smoke.log"
# 2. the scale table on the GPU: backed 100k and 300k, then the in-memory 100k reference
timeout ${SCALE_TIMEOUT:-400} python3 benchmarks/scale.py --sizes 100000 300000 --device cuda --threads 8 --tag gpu --data /tmp/atl --timeout 300 \
  --note "Each size in its own subprocess; atlases generated on the device first." > "$OUT/scale.log" 2>&1
echo "scale rc=$?" >> "$OUT/scale.log"
cp benchmarks/results/scale-gpu.* "$OUT/" 2>/dev/null
tail -n 5 "$OUT/smoke.log" "$OUT/scale.log"
