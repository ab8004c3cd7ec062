# The relay's image. Two stages: the first builds the web client and the wheel, the
# second is a slim runtime with the wheel and its pinned dependencies only (no Node, no
# build tools, no redis-server). Both run deploy/install.sh, which CI also runs
# (.ci/deploy_check.py), so the steps are tested where Docker is not available.
#
#   docker build -t fast-shoot .
#   docker run -e REDIS_URL=redis://your-redis:6379/0 -p 8080:8080 fast-shoot
#
# REDIS_URL is required (the image starts no Redis of its own) and may hold a password:
# pass it at run time (a secret of your platform), never in this file or the image.

FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN deploy/install.sh build /wheels

FROM python:3.11-slim AS runtime
COPY deploy/install.sh /usr/local/bin/fast-shoot-install
COPY --from=build /wheels /wheels
RUN fast-shoot-install runtime /wheels /venv && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /nonexistent relay
USER relay
WORKDIR /tmp
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    FAST_SHOOT_EMBEDDED_REDIS=0
EXPOSE 8080
# SIGTERM is the relay's graceful stop: sessions closed with 1001 (clients reconnect to
# another relay), shoots flushed, leases given up; it takes at most 11 s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
CMD ["fast-shoot", "serve"]
