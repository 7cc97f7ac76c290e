# Chat Studio in one container: `serve` on the embedded defaults (SQLite and Qdrant in
# /app/data, a volume), or on PostgreSQL and a Qdrant server given by STUDIO_DATABASE_URL and
# STUDIO_QDRANT_URL. It installs exactly what uv.lock lists, with the same `make install` a
# developer and CI run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True

# make drives the install; nothing else is needed at run time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 studio

WORKDIR /app
COPY . .
# make install writes the dependencies' bytecode; the app's own is written here (PYTHONDONTWRITEBYTECODE
# and a read-only /app would otherwise have every start compile it all again).
RUN make install PYTHON=python3 \
    && .venv/bin/python -m compileall -q main.py adapters builders runtime storage studio \
    && mkdir -p /app/data \
    && chown -R studio:studio /app/data

USER 10001:10001
VOLUME ["/app/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["/app/.venv/bin/python", "main.py", "serve", "--host", "0.0.0.0", "--port", "8000"]
