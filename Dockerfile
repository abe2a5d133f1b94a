# syntax=docker/dockerfile:1
# chargepoint in a container. Build and run (docs/operations.md, "Container"):
#
#   docker build -t chargepoint .
#   docker run -d --name chargepoint --restart on-failure --stop-timeout 120 \
#     --read-only --tmpfs /tmp --tmpfs /run/chargepoint:uid=10001,gid=10001,mode=0750 \
#     --device /dev/ttyUSB0 \
#     -v chargepoint-state:/var/lib/chargepoint \
#     -v /etc/chargepoint/station.yaml:/etc/chargepoint/station.yaml:ro \
#     -v /etc/chargepoint/csms-password:/run/secrets/csms-password:ro \
#     -v /etc/localtime:/etc/localtime:ro \
#     chargepoint
#
# The station file is mounted read-only, the store lives on the volume, the meter's serial
# device is passed in (group dialout inside, as on Debian hosts: otherwise add
# --group-add "$(stat -c %g /dev/ttyUSB0)"). The daemon runs as user 10001, not root.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chargepoint ./chargepoint
COPY meter ./meter
# the venv keeps only the daemon and its dependencies (byte-compiled): no pip, no setuptools
RUN python -m venv /opt/chargepoint \
    && /opt/chargepoint/bin/pip install . \
    && /opt/chargepoint/bin/python -m pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="chargepoint" \
      org.opencontainers.image.description="Eichrecht charge point daemon: OCPP, signing meters, OCMF" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/chargepoint/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 chargepoint \
    && useradd --system --uid 10001 --gid chargepoint --groups dialout \
       --home-dir /var/lib/chargepoint --no-create-home --shell /usr/sbin/nologin chargepoint \
    && install -d -o chargepoint -g chargepoint -m 0750 /var/lib/chargepoint /run/chargepoint \
    && install -d -m 0755 /etc/chargepoint
COPY --from=build /opt/chargepoint /opt/chargepoint
COPY config/ /usr/share/chargepoint/examples/
COPY docs/ /usr/share/doc/chargepoint/

USER 10001:10001
WORKDIR /var/lib/chargepoint
VOLUME ["/var/lib/chargepoint"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["chargepoint", "health", "--config", "/etc/chargepoint/station.yaml"]
ENTRYPOINT ["chargepoint"]
CMD ["run", "--config", "/etc/chargepoint/station.yaml"]
