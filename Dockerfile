FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
# The project pins lower bounds of its dependencies in pyproject.toml.
# gcc only while pip builds the matcher's optional C extension (monitor/rules/_scan.c; without
# it the same steps run in Python), removed in the same layer.
# The data volume (/data: archive, alerts log, Telegram session, media) belongs to uid/gid
# 10001, the claimwatch user: on the host, `sudo chown -R 10001:10001 ./data` once.
# hadolint ignore=DL3008,DL3013
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir ".[web]" \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 claimwatch \
    && useradd --create-home --uid 10001 --gid 10001 claimwatch \
    && mkdir -p /data && chown 10001:10001 /data
COPY rules ./rules
COPY config ./config

USER 10001:10001
VOLUME ["/data"]
ENV CLAIMWATCH_CONFIG=/config/claimwatch.yaml
# The daemon's health endpoint (config `http: {enabled: true}`); the datasette service in
# docker-compose.yml has its own check on /-/healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status == 200 else 1)"]
CMD ["claimwatch", "run"]
