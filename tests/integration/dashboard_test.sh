#!/usr/bin/env bash
# Runs dashboard/dashboard_test.mjs (a real headless chromium against the
# coordinator's --dashboard) with puppeteer-core installed from the pinned
# lock file, once per build tree. Exit 77 (skipped) without Node.js, npm or
# chromium.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DROVER_BIN_DIR=${DROVER_BIN_DIR:-$here/../../build/bin}
for program in node npm; do
  command -v "$program" >/dev/null || { echo "SKIP: $program is not installed"; exit 77; }
done
[ -x /usr/bin/chromium ] || { echo "SKIP: chromium is not installed"; exit 77; }
tools="$DROVER_BIN_DIR/../dashboard-test"
if [ ! -d "$tools/node_modules" ] || ! cmp -s "$here/dashboard/package-lock.json" "$tools/package-lock.json"; then
  mkdir -p "$tools"
  cp "$here/dashboard/package.json" "$here/dashboard/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp "$here/dashboard/dashboard_test.mjs" "$tools/"
exec node "$tools/dashboard_test.mjs"
