# syntax=docker/dockerfile:1
# Build stage: install the project and its dependencies into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md constraints.txt ./
COPY market ./market
COPY search ./search
# The versions CI tested (constraints.txt); PIP_CONSTRAINT also pins the build backend.
RUN PIP_CONSTRAINT=constraints.txt pip install .

# Runtime stage: only the environment, the migrations and an unprivileged user.
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MARKET_ENVIRONMENT=production \
    MARKET_LOAD_DEMO_DATA=false \
    MARKET_DATA_DIR=/var/lib/techmarket
RUN groupadd --system market && useradd --system --gid market --home /app market \
    && mkdir -p /var/lib/techmarket && chown market:market /var/lib/techmarket
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY migrations ./migrations
COPY alembic.ini ./
USER market
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
# `market serve` applies migrations before it starts listening.
CMD ["market", "serve", "--host", "0.0.0.0", "--port", "8000"]
