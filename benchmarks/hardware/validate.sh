#!/usr/bin/env bash
# One bounded validation run of the Suanli agent on a real GPU machine (an H200, driver 580).
#
#   OUT=/some/folder bash benchmarks/hardware/validate.sh
#
# Runs from the repository root (our package is not installed: PYTHONPATH=.). Every step is a
# process of its own under `timeout`, so a crash or a hang in one never stops the others; the
# limits below add up to 5 min 40 s at the very worst (310 s + 5 s kill grace per step);
# a normal run takes about 2 minutes. Writes at most 8 files to $OUT
# (summary.md first to read); scratch parts and step logs stay in a temporary folder.
# Always exits 0. PYTHON picks the interpreter (default python3).
set -u
cd "$(dirname "$0")/../.." || exit 0
OUT=${OUT:-}
if [ -z "$OUT" ]; then
    echo "validate: set OUT to the output folder" >&2
    exit 0
fi
mkdir -p "$OUT"
PY=${PYTHON:-python3}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/suanli-validate.XXXXXX")
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export CUDA_DEVICE_ORDER=PCI_BUS_ID  # torch's cuda:0 is NVML's GPU 0
GRACE=5  # seconds between TERM and KILL

step() {  # step NAME LIMIT_SECONDS
    local name=$1 limit=$2 start end rc
    start=$(date +%s%N)
    timeout -k "$GRACE" "$limit" "$PY" -m benchmarks.hardware.validate "$name" \
        --out "$OUT" --scratch "$SCRATCH" >"$SCRATCH/$name.log" 2>&1
    rc=$?
    end=$(date +%s%N)
    local secs=$(((end - start) / 1000000))
    printf '%s\t%s\t%s\t%d.%03d\n' "$name" "$rc" "$limit" $((secs / 1000)) $((secs % 1000)) \
        >>"$SCRATCH/steps.tsv"
    echo "validate: $name exit $rc after $((secs / 1000)) s (limit $limit s)"
}

started=$(date +%s)
step env 40        # nvidia-smi -q -x, -q, versions
step agent 50      # agent --once between two nvidia-smi reports; compare
step probes 40     # fabric (children first), XID events, PCI scan, /dev/kmsg
step cycle 40      # 50 backend read cycles, every NVML call timed
step compute 160   # torch import, idle 5 s, bf16, fp32 and fp64 GEMMs 25 s each, GPM sampler
step summary 20    # probes.json and summary.md

if [ ! -s "$OUT/summary.md" ]; then  # the summary step itself failed: say what is known
    {
        echo "# Validation run: the summary step failed"
        echo
        echo '```'
        cat "$SCRATCH/steps.tsv"
        tail -c 3000 "$SCRATCH/summary.log"
        echo '```'
    } >"$OUT/summary.md"
fi
echo "validate: done in $(($(date +%s) - started)) s; files in $OUT:"
ls -l "$OUT"
echo "validate: step logs in $SCRATCH"
exit 0
