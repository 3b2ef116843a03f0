#!/usr/bin/env bash
# Checks deploy/systemd: every unit passes `systemd-analyze verify` (with the
# built programs standing in for /usr/local/bin; any warning fails), and every
# flag in an ExecStart is one the program really has.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${DROVER_BIN_DIR:-$root/build/bin}
source "$root/tests/deploy/check_flags.sh"
if ! command -v systemd-analyze >/dev/null; then
  # Parsing the units by hand would pass where systemd would not: skip instead.
  echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

for unit in "$root"/deploy/systemd/*.service; do
  name=$(basename "$unit")
  instance=${name/@./@1.}   # a template is verified as one of its instances
  sed "s|/usr/local/bin/|$bin/|g" "$unit" >"$work/$instance"
  if ! out=$(cd "$work" && systemd-analyze verify "./$instance" 2>&1) || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify $name:"; echo "$out"; status=1
  fi
  # ExecStart with its continuation lines joined, defaults of Environment= in place.
  exec_start=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/\\$//' | tr '\n' ' ' | sed 's/^ExecStart=//')
  while IFS='=' read -r key value; do
    exec_start=${exec_start//\$\{$key\}/$value}
    exec_start=${exec_start//\$$key/$value}
  done < <(sed -n 's/^Environment=//p' "$unit")
  exec_start=${exec_start//%i/1}
  exec_start=${exec_start//%H/host}
  read -r -a argv <<<"$exec_start"
  program="$bin/$(basename "${argv[0]}")"
  if ! check_flags "$program" "${argv[@]:1}"; then
    echo "FAIL: $name: ExecStart uses flags $(basename "$program") does not have"; status=1
  fi
done
[ "$status" = 0 ] && echo "PASS: $(ls "$root"/deploy/systemd/*.service | wc -l) units"
exit $status
