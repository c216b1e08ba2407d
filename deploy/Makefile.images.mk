# Container images and deploy-check tools; included from the top-level Makefile.
#   make images                      build every service image (needs a Docker engine)
#   make images IMAGE_REGISTRY=123456789012.dkr.ecr.eu-west-1.amazonaws.com IMAGE_TAG=1.2.3
#   make push-images                 push them (after `aws ecr get-login-password | docker login ...`)
#   make deploy-tools                checkov in its own virtualenv for tests/deploy

IMAGE_SERVICES := fetcher writer recommender alerts api streamer janitor
IMAGE_REGISTRY ?=
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
IMAGE_PREFIX := $(if $(IMAGE_REGISTRY),$(IMAGE_REGISTRY)/,)stocktrack-
DOCKER ?= docker
# Set REQUIRE_DOCKER=1 (CI) to fail instead of skipping when no Docker engine is present.
REQUIRE_DOCKER ?= 0

.PHONY: images push-images deploy-tools $(addprefix image-,$(IMAGE_SERVICES)) $(addprefix push-image-,$(IMAGE_SERVICES))

images: $(addprefix image-,$(IMAGE_SERVICES))

$(addprefix image-,$(IMAGE_SERVICES)): image-%:
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
		echo "images: no Docker engine reachable, skipping $*"; \
		test "$(REQUIRE_DOCKER)" != 1; \
	else \
		$(DOCKER) build --file services/$*/Dockerfile --tag $(IMAGE_PREFIX)$*:$(IMAGE_TAG) . ; \
	fi

push-images: $(addprefix push-image-,$(IMAGE_SERVICES))

$(addprefix push-image-,$(IMAGE_SERVICES)): push-image-%: image-%
	$(DOCKER) push $(IMAGE_PREFIX)$*:$(IMAGE_TAG)

# checkov pins packaging<24 while pytest needs packaging>=24, so it cannot share .venv;
# it lives in its own virtualenv under build/ (ignored by git). tests/deploy uses it.
CHECKOV_VENV := build/checkov-venv
CHECKOV_VERSION := 3.3.30

deploy-tools: $(CHECKOV_VENV)/bin/checkov

$(CHECKOV_VENV)/bin/checkov:
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
