# One image for every orderlab role and for JupyterLab.
#
#   docker build -t orderlab:local .
#   docker run --rm orderlab:local                       # orderlab --help
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=host:9092 orderlab:local orderlab run analytics
#
# docker-compose.yml builds it for the `services` and `lab` profiles, and the
# Kubernetes manifests in deploy/ run it. The Kafka broker is not in here:
# Compose uses the apache/kafka image, Kubernetes uses Strimzi.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The unprivileged user everything runs as. UID 1000 is the first user on most
# Linux hosts, so notebooks that JupyterLab saves into a bind-mounted
# notebooks/ stay editable there; build with --build-arg ORDERLAB_UID=... to
# match another host user. deploy/ runs the pods as this UID too.
ARG ORDERLAB_UID=1000
RUN groupadd --gid "${ORDERLAB_UID}" orderlab \
 && useradd --uid "${ORDERLAB_UID}" --gid orderlab --create-home --shell /bin/bash orderlab \
 && install -d -o orderlab -g orderlab /var/lib/orderlab

WORKDIR /app
COPY . /app
# The package with JupyterLab (the `lab` extra); build leftovers are removed
# so /app holds only the sources and notebooks.
RUN pip install ".[lab]" \
 && rm -rf build ./*.egg-info \
 && install -d /app/notebooks \
 && chown -R orderlab:orderlab /app/notebooks

# /var/lib/orderlab holds the sqlite ledger (ORDERLAB_DB_URL): Compose mounts
# a named volume there, which takes the ownership set above on first use.
USER ${ORDERLAB_UID}:${ORDERLAB_UID}
EXPOSE 8888
CMD ["orderlab", "--help"]
