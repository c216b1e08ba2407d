#!/usr/bin/env bash
# The rollout both pipelines run: the committed production defaults plus one environment's own
# values file, which lives outside the repository (a GitHub environment variable, an SSM
# parameter), with the images this pipeline run pushed. A render that still holds the example
# placeholders of values-production.yaml is refused before anything reaches the cluster.
#   deploy/helm-upgrade.sh RELEASE NAMESPACE ENVIRONMENT_VALUES_FILE IMAGE_REGISTRY IMAGE_TAG
set -euo pipefail
release="$1"
namespace="$2"
environment_values="$3"
registry="$4"
tag="$5"
cd "$(dirname "$0")/.."
chart=deploy/helm/stocktrack
test -s "$environment_values" || { echo "empty environment values file: $environment_values" >&2; exit 1; }
args=(
  --namespace "$namespace"
  --values deploy/helm/values-production.yaml
  --values "$environment_values"
  --set-string "image.registry=$registry"
  --set-string "image.tag=$tag"
)
rendered="$(helm template "$release" "$chart" "${args[@]}")"
if grep -nE '123456789012|\.example\.com|xxxxxx|00000000-0000-0000-0000-000000000000' <<<"$rendered" >&2; then
  echo "the values above are still the examples of values-production.yaml; set them in the environment's file" >&2
  exit 1
fi
# --atomic rolls the release back by itself if the new pods never become ready.
helm upgrade --install "$release" "$chart" "${args[@]}" --atomic --wait --timeout 10m
