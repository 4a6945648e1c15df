#!/usr/bin/env bash
# Bounded fuzz runs of every target in fuzz/, on the stable toolchain.
#
# cargo-fuzz needs nightly for its sanitizers; libFuzzer's coverage guidance
# alone works on stable with these flags. Usage: .ci/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks --cfg fuzzing"
# A target dir of its own: the instrumented build must not mix with the normal one.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^innkeeper-fuzz$')
cargo build --release --target "$triple" --bins
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "fuzz: $t for ${seconds}s"
  "$CARGO_TARGET_DIR/$triple/release/$t" "corpus/$t" -max_total_time="$seconds" -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|Done)" || true
  # libFuzzer exits non-zero and leaves crash-* files when it finds a crash.
  if ls crash-* leak-* timeout-* >/dev/null 2>&1; then
    echo "fuzz: $t found a failing input:"; ls crash-* leak-* timeout-* 2>/dev/null; exit 1
  fi
done
