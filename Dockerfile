# syntax=docker/dockerfile:1
# The image of every stocktrack service, chosen at build time. Build from the repository root:
#   docker build --build-arg SERVICE=api --build-arg PORT=8080 -t stocktrack-api .
#   make images                         (every service, with its port; deploy/Makefile.images.mk)
# SERVICE is a folder under services/; PORT is its HTTP port (api, streamer) or probe/metrics
# port (workers; the janitor serves nothing). No HEALTHCHECK: Kubernetes probes /healthz and
# /readyz instead.
#
# The base comes from ECR Public (Docker's official image, mirrored without pull-rate limits)
# pinned by digest, so a rebuild cannot silently change it. To move it: resolve the index
# digest of the tag (`docker buildx imagetools inspect <image>:<tag>` or `crane digest`) and
# replace the sha256 below; tests/deploy/test_dockerfile.py checks the reference's shape.
ARG PYTHON_IMAGE=public.ecr.aws/docker/library/python:3.11-slim-bookworm@sha256:0a310eeecf4e1f5a0743f9a6520c90c88d089c903ca5fd283f501e3a805f5f89

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY constraints.txt ./
COPY libs/common ./libs/common
COPY services/${SERVICE} ./services/${SERVICE}
# Dependencies come as wheels, so the build stage needs no compiler. Byte-code is compiled here
# because the root file system is read-only at run time. The service's console script becomes
# the fixed entry point; pip and setuptools leave the virtualenv.
RUN test -n "${SERVICE}" && test -f "services/${SERVICE}/pyproject.toml" \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt ./libs/common "./services/${SERVICE}" \
    && ln -s "stocktrack-${SERVICE}" /opt/venv/bin/stocktrack-service \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE} AS runtime
ARG PORT=9100
# The base image's own installer goes too: nothing at run time installs packages.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && rm -f /usr/local/bin/pip* /usr/local/bin/idle* /usr/local/bin/pydoc* \
    && groupadd --system --gid 10001 stocktrack \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin stocktrack
COPY --from=build /opt/venv /opt/venv
# Amazon RDS certificate authorities (global bundle, see deploy/certs/README.md), so
# sslmode=verify-full works against RDS with no download at run time. The chart points
# PGSSLROOTCERT here (or at a CA bundle it mounts); the image leaves it unset, because libpq
# verifies even sslmode=require against a root file it is given.
COPY deploy/certs/rds-global-bundle.pem /etc/stocktrack/certs/rds-global-bundle.pem
# The root file system is read-only in Kubernetes; /tmp is the writable emptyDir, so it is
# also home and working directory (library caches, relative output paths).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HTTP_PORT=${PORT} \
    METRICS_PORT=${PORT}
WORKDIR /tmp
EXPOSE ${PORT}
USER 10001:10001
ENTRYPOINT ["/opt/venv/bin/stocktrack-service"]
