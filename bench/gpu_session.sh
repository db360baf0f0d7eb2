#!/bin/bash
# One prepared session on a lent GPU machine (BENCHMARKS.md, "CUDA paths"): the CUDA training paths,
# a protocol-v2 slice, then the test suite on CUDA. Run from the repository root, with wheels of the
# packages the machine lacks in .whl/ and the Fashion-MNIST IDX files in .fmnist/; results go to $OUT.
set -u
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD/src:/tmp/site
mkdir -p /usr/share/datasets/fashion-mnist && cp .fmnist/* /usr/share/datasets/fashion-mnist/
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc;
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee $OUT/gpu.txt
timeout 170 python3 bench/gpu_paths.py --epochs 3 2>&1 | tee $OUT/gpu_paths.txt
timeout 230 python3 bench/active_learning.py methods --methods al,prunefuse@0.5,prunefuse@0.5-nokd --seeds 0 \
    --out /tmp/v2gpu > $OUT/v2_log.txt 2>&1
timeout 30 python3 bench/active_learning.py table --seeds 0 --out /tmp/v2gpu 2>&1 | tee $OUT/v2_table.txt
# -v writes every test's name and outcome to the file as it ends, so a slot that runs out still says which failed
timeout 150 python3 -m pytest -v -p no:cacheprovider -p no:benchmark -n 8 --timeout 120 -rfE tests > $OUT/pytest.txt 2>&1
grep -E "(FAILED|ERROR) " $OUT/pytest.txt | sort -u | head -40
