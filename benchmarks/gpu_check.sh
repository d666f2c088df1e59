#!/bin/bash
# The device checks of issue 25, as one short script for a session that is lent a GPU (about 6 min on one H200).
#   bash benchmarks/gpu_check.sh [OUT_DIR]     (run from the repository root, its venv active, PYTHONPATH=$PWD)
# 1. the CUDA tests (they skip without a GPU); 2. the temporal smoother alone at 1080p and 2160p, numpy on
# the CPU beside torch on the GPU, with the codes' difference; 3. whole runs at 1080p on the GPU (the
# samples' still as the photo, 12 s film, default and fast configs, fp16, batch 0) with --profile.
set -u
out=${1:-${OUT:-/tmp/gpu_check}}; mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv 2>&1 | tee "$out/gpu.txt"
python -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' | tee -a "$out/gpu.txt"
timeout 240 python -m pytest -q -rs tests/test_temporal_torch.py tests/test_runtime.py \
    tests/test_pipeline.py::test_cuda_matches_cpu 2>&1 | tail -15 | tee "$out/tests.txt"
for size in 1080 2160; do
  for mode in forward bidirectional; do
    timeout 120 python benchmarks/bench_smoother.py --size $size --mode $mode --frames 32 --device cuda 2>&1 | tail -2
  done
done | tee "$out/smoother.txt"
timeout 300 python benchmarks/bench_speed.py --sizes 1080 --seconds 12 --photos samples --workdir "$out/films" \
    --extra '--device cuda --batch-size 0' 2>&1 | tail -12 | tee "$out/speed.txt"
