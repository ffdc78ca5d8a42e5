#!/usr/bin/env bash
# Runs libFuzzer targets for a bounded time under ASan+UBSan.
#   tests/fuzz/run_fuzz.sh BUILD_DIR SECONDS [TARGET...]
# Every target in tests/fuzz/corpus/ when none is named. The working corpus
# grows in BUILD_DIR/fuzz-corpus/<target> (seeded from the repo's corpus);
# a crash, leak or timeout input is copied to tests/fuzz/regressions/<target>/
# (which the ordinary test trees replay) and the run fails. Prints per target
# the executions run and the coverage (cov: / ft:) libFuzzer reached.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$1"
seconds="$2"
shift 2
targets=("$@")
if ((${#targets[@]} == 0)); then
  for d in "$here"/corpus/*/; do targets+=("$(basename "$d")"); done
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/bin/${t}_fuzz"
  if [[ ! -x "$bin" ]]; then
    echo "no fuzz target $bin" >&2
    failed+=("$t")
    continue
  fi
  work="$build/fuzz-corpus/$t"
  art="$build/fuzz-artifacts/$t"
  mkdir -p "$work" "$art" "$here/regressions/$t"
  log="$build/fuzz-$t.log"
  echo "==> fuzzing $t for ${seconds}s (log $log)" >&2
  rc=0
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -max_len=4096 -artifact_prefix="$art/" \
    "$work" "$here/corpus/$t" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  covline="$(grep -E '(DONE|INITED|NEW|REDUCE|pulse).*cov:' "$log" | tail -1 || true)"
  cov="$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$covline")"
  ft="$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$covline")"
  crashes=0
  for f in "$art"/*; do
    [[ -f "$f" ]] || continue
    cp "$f" "$here/regressions/$t/"
    crashes=$((crashes + 1))
  done
  rm -f "$art"/*
  summary+=("$t: execs=${execs:-?} cov=${cov:-?} ft=${ft:-?} crashes=$crashes rc=$rc")
  if ((rc != 0 || crashes != 0)); then
    tail -40 "$log" >&2
    echo "FAIL: $t (reproducers kept in tests/fuzz/regressions/$t/)" >&2
    failed+=("$t")
  fi
done
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz targets failed: ${failed[*]}" >&2
  exit 1
fi
