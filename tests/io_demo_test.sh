#!/usr/bin/env bash
# ctest IoDemo: scripts/io-demo must exit 0 and print what the README shows
# (the last three responses of the first job, then the pipeline's 2 and 3).
set -uo pipefail
out=$("$(dirname "$0")/../scripts/io-demo")
status=$?
if [ "$status" != 0 ]; then echo "FAIL: scripts/io-demo exited $status" >&2; exit 1; fi
printf '%s\n' "$out"
lines=$(printf '%s\n' "$out" | tail -2 | tr '\n' ' ')
if [ "$lines" != "2 3 " ]; then echo "FAIL: the pipeline printed '$lines', want '2 3 '" >&2; exit 1; fi
if ! printf '%s\n' "$out" | grep -q '"page 1000","attempt":1}'; then
  echo "FAIL: the last response of the I/O job is missing" >&2; exit 1
fi
echo PASS
