#!/usr/bin/env bash
# Issue 12's lever grid fitted on a lent device machine's CPU cores (one torch thread per fit, all cores busy);
# the embeddings come back in $OUT/emb.tgz and are scored here, where scib-metrics is installed:
#   bash ../shared/tools/device-wheels.sh            # here, once: fills .whl/
#   device run, carry [".whl"]:  bash benchmarks/device_levers.sh
#   python benchmarks/levers.py --augment diffaug --seeds 0 1 2 --emb <files_at>/emb --tag grid --note "..."
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rm -rf /tmp/site; python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tail -3
export ANNDATA_ALLOW_WRITE_NULLABLE_STRINGS=1 PYTHONPATH=$PWD:/tmp/site OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MPLBACKEND=Agg NUMBA_CACHE_DIR=/tmp/numba
python3 -c "import diffaug.contrastive, scanpy" || { echo "imports failed"; exit 3; }
{ lscpu | grep -m1 "Model name"; nproc --all; python3 -c "import torch; print(torch.__version__)"; } > "$OUT/device.txt" 2>&1
jobs=$(( $(nproc --all) - 1 ))
timeout ${FIT_TIMEOUT:-470} python3 benchmarks/levers.py --augment diffaug --fit-only --emb /tmp/emb --jobs $jobs \
  --seeds ${SEEDS:-0 1 2} > "$OUT/fit.log" 2>&1
echo "fit rc=$? jobs=$jobs" >> "$OUT/fit.log"
rm -f /tmp/emb/*.tmp.npz; tar czf "$OUT/emb.tgz" -C /tmp/emb .  # one file: the device returns a limited number of files
tail -n 4 "$OUT/fit.log"; ls /tmp/emb | wc -l
