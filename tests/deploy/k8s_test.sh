#!/usr/bin/env bash
# Checks deploy/kubernetes offline: every manifest validates against the
# Kubernetes API schemas (npm kubernetes-models, pinned in k8s/package-lock.json),
# the kustomization lists files that exist, every container and probe command
# uses flags the drover programs really have, and the Dockerfile installs the
# programs the manifests run. Exit 77 (skipped) without Node.js and npm.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${DROVER_BIN_DIR:-$root/build/bin}
source "$root/tests/deploy/check_flags.sh"
for program in node npm; do
  command -v "$program" >/dev/null || { echo "SKIP: $program is not installed"; exit 77; }
done
kube="$root/deploy/kubernetes"
status=0

# The validator's packages, installed once per build tree from the lock file.
tools="$bin/../k8s-validate"
if [ ! -d "$tools/node_modules" ] || ! cmp -s "$root/tests/deploy/k8s/package-lock.json" "$tools/package-lock.json"; then
  mkdir -p "$tools"
  cp "$root/tests/deploy/k8s/package.json" "$root/tests/deploy/k8s/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp "$root/tests/deploy/k8s/validate.mjs" "$tools/"

for resource in $(sed -n 's/^  - \([a-z-]*\.yaml\)$/\1/p' "$kube/kustomization.yaml"); do
  [ -f "$kube/$resource" ] || { echo "FAIL: kustomization.yaml lists $resource, which does not exist"; status=1; }
done

if ! commands=$(node "$tools/validate.mjs" "$kube"/*.yaml); then
  echo "FAIL: manifests do not validate (see above)"; status=1
fi
while IFS=$'\t' read -r -a argv; do
  [ ${#argv[@]} -gt 0 ] || continue
  case "${argv[0]}" in
    /usr/local/bin/drover*)
      program="$bin/$(basename "${argv[0]}")"
      check_flags "$program" "${argv[@]:1}" || { echo "FAIL: ${argv[*]}"; status=1; }
      grep -q "build/bin/$(basename "${argv[0]}")" "$kube/Dockerfile" \
        || { echo "FAIL: the Dockerfile does not install $(basename "${argv[0]}")"; status=1; }
      ;;
    /bin/sh) ;;  # health-file probes: the file is checked below
    *) echo "FAIL: unexpected command ${argv[0]}"; status=1 ;;
  esac
done <<<"$commands"
health=$(grep -o -- '--health-file=[^ ]*' "$kube/worker-deployment.yaml" | cut -d= -f2)
[ -n "$health" ] && [ "$(grep -c "find $health -newermt" "$kube/worker-deployment.yaml")" = 2 ] \
  || { echo "FAIL: the worker probes do not check its --health-file"; status=1; }
for script in scripts/install-deps scripts/build; do
  grep -q "$script" "$kube/Dockerfile" && [ -x "$root/$script" ] || { echo "FAIL: Dockerfile: $script"; status=1; }
done
[ "$status" = 0 ] && echo "PASS: $(ls "$kube"/*.yaml | wc -l) files"
exit $status
