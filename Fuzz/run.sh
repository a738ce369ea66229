#!/usr/bin/env bash
# Builds a libFuzzer target and runs it for a given time on one core:  Fuzz/run.sh bundle|onnx SECONDS [libFuzzer flags…]
#
# The build is release with libFuzzer's coverage instrumentation and AddressSanitizer (release drops Swift's
# unsafe-pointer bounds checks, so ASan is what sees an out-of-bounds read), in Fuzz/.build. The corpus grows in
# Fuzz/.build/corpus/TARGET across runs; it is seeded from the valid files the tests already hold (README.md).
# Crashing inputs land in Fuzz/.build/artifacts/TARGET/. Prints the exec count and coverage at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
target="${1:?usage: Fuzz/run.sh bundle|onnx SECONDS [libFuzzer flags…]}"
seconds="${2:?usage: Fuzz/run.sh bundle|onnx SECONDS [libFuzzer flags…]}"
shift 2

seeds="$here/.build/seeds/$target"
rm -rf "$seeds" && mkdir -p "$seeds"
case "$target" in
  bundle)
    cp "$root"/Tests/FMBFormatTests/golden/*.fmb "$seeds"/
    regressions="$root/Tests/FMBFormatTests/fuzz-regressions" ;;
  onnx)
    cp "$root"/Tests/Fixtures/models/*.onnx "$seeds"/
    regressions="$root/Tests/FlashMemCompilerTests/fuzz-regressions" ;;
  *) echo "unknown target '$target' (bundle or onnx)" >&2; exit 2 ;;
esac
if [ -d "$regressions" ]; then cp "$regressions"/* "$seeds"/ 2>/dev/null || true; fi

# SwiftPM passes its sanitizers to swiftc as separate -sanitize= flags in no fixed order, and swiftc keeps only
# the last: the combined flag after them is what makes every Swift module both ASan- and coverage-instrumented.
(cd "$here" && swift build -c release --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address \
   -Xswiftc -enable-testing \
   --product "fuzz-$target" 2>&1 | grep -v "^\[" | grep -v "Cannot export local symbol '__asan_extra_spill_area'" >&2)
binary="$here/.build/release/fuzz-$target"

corpus="$here/.build/corpus/$target"
artifacts="$here/.build/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
log="$here/.build/fuzz-$target.log"
echo "running fuzz-$target for $seconds s; log: $log" >&2
set +e
# Swift's runtime keeps metadata caches for the life of the process, which LeakSanitizer would report.
# Swift's own crash backtracer would race AddressSanitizer's report; libFuzzer prints the stack.
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$binary" "$corpus" "$seeds" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" >"$log" 2>&1
status=$?
set -e
grep -E "^INFO: Loaded|INITED" "$log" | head -3
grep -E "^#[0-9]+" "$log" | tail -1
grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" "$log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz-$target stopped with status $status; the end of $log:" >&2
  tail -40 "$log" >&2
  ls -t "$artifacts" | head -3 >&2
fi
exit "$status"
