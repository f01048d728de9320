FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install ".[web]" && useradd --create-home --uid 10001 claimwatch && mkdir -p /data && chown claimwatch /data
COPY rules ./rules
COPY config ./config

USER claimwatch
VOLUME ["/data"]
ENV CLAIMWATCH_CONFIG=/config/claimwatch.yaml
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status == 200 else 1)"
CMD ["claimwatch", "run"]
