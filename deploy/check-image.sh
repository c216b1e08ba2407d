#!/usr/bin/env bash
# Checks one built service image before it is pushed; `make test-image-<service>` and both
# pipelines run it, so the image that passes is the image that is pushed.
#   deploy/check-image.sh SERVICE IMAGE
# The non-Python files of the service's and libs/common's packages (from git) must all be in
# the image; deploy/image_check.py runs inside the image with no network and a read-only root.
set -euo pipefail
service="$1"
image="$2"
cd "$(dirname "$0")/.."
mapfile -t package_files < <(
  git ls-files -- "libs/common/stocktrack_common" "services/$service/$service" \
    | grep -v '\.py$' | sed -e 's#^libs/common/##' -e "s#^services/$service/##"
)
docker run --rm -i --read-only --network none --entrypoint python "$image" - "$service" "${package_files[@]}" \
  < deploy/image_check.py
echo "image $image: checks passed"
