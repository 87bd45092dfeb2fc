#!/usr/bin/env bash
# The GPU check of issue 13 (mixed precision and channels-last on CUDA, and what the CIFAR-10 pipeline costs at full
# model size), as one command on a lent device machine (Python 3.12, torch preinstalled, no network, no CIFAR-10):
#   bash ../shared/tools/device-wheels.sh            # here, once: fills .whl/
#   device run, carry [".whl"]:  bash benchmarks/device_cifar10.sh
# The data are the script's fake CIFAR-10 files at full size (50,000 training images of 32x32), so the accuracies are
# those of a toy task; the cost columns (images/s, DiffAug step / floor, peak memory) are the point. Two runs side by
# side on the same warm GPU: float32 (which trains and saves the denoiser) and bf16 autocast (which loads it).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rm -rf /tmp/site; python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tail -3
export PYTHONPATH=$PWD:/tmp/site OMP_NUM_THREADS=8 MKL_NUM_THREADS=8 MPLBACKEND=Agg PYTHONUNBUFFERED=1
python3 -c "import diffaug.classifier, fastai.basics" || { echo "imports failed"; exit 3; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch; print(torch.__version__)"; } > "$OUT/device.txt" 2>&1
S=(n_train=50000 n_test=2000 n_test_de=500 den_epochs=${DEN_EPOCHS:-3} den_bs=256 den_lr=5e-4 den_base=64 cls_epochs=${CLS_EPOCHS:-2}
   cls_bs=256 width=64 'kinds=["translate"]' 'severities=[1,3,5]' floor_batches=20 'de_steps=[0,50,100,150,200,250,300,350,400,450]')
timeout ${T1:-230} python3 benchmarks/cifar10.py --toy --device cuda --out /tmp/c10 --tag gpu-fp32 --set "${S[@]}" precision=null 2>&1 | tee "$OUT/fp32.log"
timeout ${T2:-200} python3 benchmarks/cifar10.py --toy --device cuda --out /tmp/c10 --tag gpu-bf16 --denoiser /tmp/c10/denoiser-seed0 --set "${S[@]}" precision=bf16 2>&1 | tee "$OUT/bf16.log"
cp /tmp/c10/cifar10-gpu-*.md /tmp/c10/cifar10-gpu-*cost.csv "$OUT/" 2>/dev/null
ls "$OUT"
