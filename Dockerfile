# The Ticker server image: one server per container (TICKER_WORKERS processes); scale with more containers.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY ticker ./ticker
COPY web ./web
RUN pip install . && useradd --system --no-create-home ticker
USER ticker

ENV TICKER_HOST=0.0.0.0 TICKER_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"TICKER_PORT\"]}/healthz', timeout=2)"
STOPSIGNAL SIGTERM
CMD ["ticker", "serve"]
