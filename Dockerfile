# convstore's image: the wheel built in a first stage, installed with its extras in a slim final
# stage that runs `convstore serve` as an unprivileged user (docs/operations.md, "The container").

FROM python:3.11-slim AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONVSTORE_HOST=0.0.0.0 \
    CONVSTORE_PORT=8000 \
    CONVSTORE_ENV=production \
    CONVSTORE_LOG_FORMAT=json \
    CONVSTORE_DATABASE_URL=sqlite:////data/convstore.db
COPY --from=builder /dist /tmp/dist
# The wheel is a local file built above (DL3013 asks for a version pin); its dependencies are
# bounded by pyproject.toml.
# hadolint ignore=DL3013
RUN wheel="$(find /tmp/dist -name 'convstore-*.whl')" \
    && pip install --no-cache-dir "${wheel}[postgres,server,openai,mcp]" \
    && rm -rf /tmp/dist \
    && useradd --create-home --uid 10001 --user-group convstore \
    && mkdir /data \
    && chown convstore:convstore /data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/readyz' % os.environ.get('CONVSTORE_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
CMD ["convstore", "serve"]
