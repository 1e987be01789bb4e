# avatarbot API/worker image: CPU pipeline, offline defaults. Build: docker build -t avatarbot .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AVATARBOT_DATA_DIR=/data \
    AVATARBOT_HOST=0.0.0.0

# libgl/libglib for OpenCV and mediapipe wheels; curl for the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY avatarbot ./avatarbot
COPY config ./config
RUN pip install --no-cache-dir ".[redis,postgres]"

RUN useradd --create-home --uid 10001 avatarbot && mkdir -p /data && chown avatarbot /data
USER avatarbot
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1

CMD ["avatarbot", "serve"]
