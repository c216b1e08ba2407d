# Container images and deploy-check tools; included from the top-level Makefile.
# One Dockerfile (repository root) builds every service: SERVICE picks the package, PORT the
# port it exposes. Build once, check, push that same image:
#   make images                      build every service image (needs a Docker engine)
#   make test-images                 build and check them (deploy/check-image.sh)
#   make push-images IMAGE_REGISTRY=123456789012.dkr.ecr.eu-west-1.amazonaws.com IMAGE_TAG=1.2.3
#                                    build, check and push (after `aws ecr get-login-password | docker login ...`)
#   make deploy-tools                checkov in its own virtualenv for tests/deploy
# The ECR repositories are IMMUTABLE: give every push a tag no other build uses (the pipelines
# add their run id to the commit; see .github/workflows/ci.yml and deploy/aws/buildspec-images.yml).

IMAGE_SERVICES := fetcher writer recommender alerts api streamer janitor
# HTTP port of the api and the streamer; probe/metrics port of the workers (the janitor serves none).
image_port = $(if $(filter api streamer,$(1)),8080,9100)
IMAGE_REGISTRY ?=
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
IMAGE_PREFIX := $(if $(IMAGE_REGISTRY),$(IMAGE_REGISTRY)/,)stocktrack-
DOCKER ?= docker
# Set REQUIRE_DOCKER=1 (CI) to fail instead of skipping when no Docker engine is present.
REQUIRE_DOCKER ?= 0

.PHONY: images test-images push-images deploy-tools $(addprefix image-,$(IMAGE_SERVICES)) \
        $(addprefix test-image-,$(IMAGE_SERVICES)) $(addprefix push-image-,$(IMAGE_SERVICES))

images: $(addprefix image-,$(IMAGE_SERVICES))
test-images: $(addprefix test-image-,$(IMAGE_SERVICES))
push-images: $(addprefix push-image-,$(IMAGE_SERVICES))

$(addprefix image-,$(IMAGE_SERVICES)): image-%:
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
		echo "images: no Docker engine reachable, skipping $*"; \
		test "$(REQUIRE_DOCKER)" != 1; \
	else \
		$(DOCKER) build --file Dockerfile --build-arg SERVICE=$* --build-arg PORT=$(call image_port,$*) \
			--tag $(IMAGE_PREFIX)$*:$(IMAGE_TAG) . ; \
	fi

$(addprefix test-image-,$(IMAGE_SERVICES)): test-image-%: image-%
	@if $(DOCKER) info >/dev/null 2>&1; then deploy/check-image.sh $* $(IMAGE_PREFIX)$*:$(IMAGE_TAG); fi

# Pushes the image built and checked in this same make run, never a rebuild.
$(addprefix push-image-,$(IMAGE_SERVICES)): push-image-%: test-image-%
	$(DOCKER) push $(IMAGE_PREFIX)$*:$(IMAGE_TAG)

# checkov pins packaging<24 while pytest needs packaging>=24, so it cannot share .venv;
# it lives in its own virtualenv under build/ (ignored by git). tests/deploy uses it.
CHECKOV_VENV := build/checkov-venv
CHECKOV_VERSION := 3.3.30

deploy-tools: $(CHECKOV_VENV)/bin/checkov

$(CHECKOV_VENV)/bin/checkov:
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
