#!/usr/bin/env bash
# Runs on the GPU machine (device tool), after bench/gpu-pack.sh here:
#   run(command: "bash bench/gpu.sh", carry: [".gpu"], timeout_s: 590)
# The end-to-end benchmark of the real 384 configuration (synthetic weights of the real shapes)
# through Dawn + the NVIDIA Vulkan driver, then the PyTorch eager reference of the same shapes.
# Results land in $OUT (kernels-gpu.json and kernels.log: the kernel lab; e2e-gpu.json,
# e2e-gpu-alt1..7.json, torch-gpu.json, golden.log with the GPU's name, e2e.log, adapter.json): 14 files.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done; ldconfig
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node
xz -dc .gpu/dawn.node.xz > .gpu/node_modules/webgpu/dist/linux-x64/dawn.node
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$icd" ] && export VK_ICD_FILENAMES="$icd" && break
done
export DUALTOKEN_SHADERS=$PWD/.gpu/shaders XDG_RUNTIME_DIR=/tmp
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/golden.log"
# What Dawn offers here (features with unsafe APIs allowed, subgroup-matrix configurations, limits).
/tmp/node bench/gpu-adapter.mjs .gpu/node_modules/webgpu/index.js > "$OUT/adapter.json" 2>/dev/null; grep -o '"subgroupMatrixConfigs": [^]]*]' "$OUT/adapter.json" | head -2
# The golden case through each set of kernel variants: codes identical, floats within 1e-4.
G=test/fixtures/golden/tiny
for K in "" "linear=kn_sg,attention=sg2,conv2d=winograd4,group_norm=vec4,rq_search=lanes" "conv2d=winograd,attention=sg2" "linear=kn_sg,attention=sg,conv2d=direct,group_norm=chunked,rq_search=lanes"; do
  /tmp/node .gpu/dualtoken.mjs encode --model $G --pixel-values $G/expected.safetensors --out /tmp/c.safetensors --quiet ${K:+--kernel $K} &&
  /tmp/node .gpu/dualtoken.mjs decode --model $G /tmp/c.safetensors --out /tmp/r.safetensors --quiet ${K:+--kernel $K} &&
  python3 bench/check_golden.py $G /tmp/c.safetensors /tmp/r.safetensors "golden tiny ${K:-default kernels}"
done 2>&1 | grep -v '^Warning' | tee -a "$OUT/golden.log"
# Overridable for a dry run on a CPU machine, e.g. BENCH_ARGS / ALT_BENCH_ARGS="--model test/fixtures/golden/tiny --batch 1",
# KERNEL_ARGS="--no-peers --reps 1 --ops fma_peak,linear_1152x1152".
BENCH_ARGS=${BENCH_ARGS:---preset siglip_384_rvq8 --batch 1,4,8,16 --reps 3 --profile}
TORCH_ARGS=${TORCH_ARGS:---batch 1,4,8,16 --reps 3 --dtype fp32,bf16}
ALT_BENCH_ARGS=${ALT_BENCH_ARGS:---preset siglip_384_rvq8 --batch 4 --reps 3}
KERNEL_ARGS=${KERNEL_ARGS:---no-peers --reps 3}
# The kernel lab: every variant of each hot op at the real shapes, validated, then timed (no peers).
# shellcheck disable=SC2086
timeout 150 /tmp/node .gpu/kernels.mjs $KERNEL_ARGS --json "$OUT/kernels-gpu.json" 2>&1 | grep -v '^Warning' > "$OUT/kernels.log"
tail -60 "$OUT/kernels.log"
# The end-to-end benchmark with the default variants.
# shellcheck disable=SC2086
/tmp/node .gpu/dualtoken.mjs bench $BENCH_ARGS --json "$OUT/e2e-gpu.json" 2>&1 | tee "$OUT/e2e.log"
# The PyTorch eager reference of the same shapes (before the ALT runs: if the device's time limit
# cuts the script short, it cuts those).
# shellcheck disable=SC2086
PYTHONUNBUFFERED=1 python3 bench/torch_ref.py $TORCH_ARGS --json "$OUT/torch-gpu.json" 2>&1 | tee -a "$OUT/e2e.log"
# The end-to-end benchmark again with other variants or precision, one run per ';'-separated set
# of options (default: each GPU default of before 2026-12-04 against today's workgroup-tiled one
# (the quantizer search, linear, conv, attention), the F(4x4) Winograd conv, precision f16 (the
# f16-arithmetic wg_tiled_f16), and f16 with the f16-weight kernels instead).
ALT=${ALT_RUNS:---kernel rq_search=lanes;--kernel linear=kn_sg;--kernel conv2d=direct;--kernel attention=sg;--kernel conv2d=winograd4;--precision f16;--precision f16 --kernel linear=kn_sg_f16,conv2d=gemm_sg_f16}
i=0
IFS=';' read -ra SETS <<< "$ALT"
for S in "${SETS[@]}"; do
  i=$((i + 1))
  # shellcheck disable=SC2086
  /tmp/node .gpu/dualtoken.mjs bench $ALT_BENCH_ARGS $S --json "$OUT/e2e-gpu-alt$i.json" 2>&1 | tee -a "$OUT/e2e.log"
done
