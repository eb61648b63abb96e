#!/usr/bin/env bash
# Validates the manifests (and the generated model ConfigMaps) offline
# against the Kubernetes OpenAPI schemas, with a pinned kubernetes-validate
# in a throw-away venv. No cluster needed.
#
#   deploy/k8s/validate.sh            # Kubernetes 1.37 schemas (the package default)
#   K8S_VERSION=1.30.0 deploy/k8s/validate.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${KV_VENV:-/tmp/triad-kubernetes-validate}"
[[ -x "$VENV/bin/kubernetes-validate" ]] || {
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q kubernetes-validate==1.37.0
}
models_yaml="$(mktemp)"
trap 'rm -f "$models_yaml"' EXIT
python3 "$ROOT/deploy/k8s/models-configmaps.py" "$ROOT/models" > "$models_yaml"
"$VENV/bin/kubernetes-validate" --strict --quiet ${K8S_VERSION:+-k "$K8S_VERSION"} \
    "$ROOT"/deploy/k8s/*.yaml "$models_yaml"
echo "deploy/k8s: all manifests valid"
