# triad-monitor: built FROM scratch from the static binary, the model
# repository (reference profiles) and an empty data directory that
# deploy/build-images.sh stages next to this file. A scratch image has no
# mkdir, so /data comes from the context, owned by the runtime user.
FROM scratch
COPY triad-monitor /triad-monitor
COPY --chown=65532:65532 tmp /tmp
COPY models /models
COPY --chown=65532:65532 data /data
# The server and its `healthcheck` subcommand both read TRIAD_MONITOR_ADDR,
# so the health check always probes the port the server listens on.
# SQLite on /data by default (mount a volume there); set
# TRIAD_MONITOR_DATABASE_URL=postgres://… for PostgreSQL.
ENV TRIAD_MONITOR_ADDR=0.0.0.0:50053 \
    TRIAD_MONITOR_HTTP_ADDR=0.0.0.0:8081 \
    TRIAD_MONITOR_DATABASE_URL=sqlite:///data/monitor.db \
    TRIAD_MODELS_DIR=/models \
    RUST_LOG=info \
    NO_COLOR=1
USER 65532:65532
VOLUME ["/data"]
# 50053 gRPC (triad.v1.Monitor, health, reflection); 8081 HTTP dashboard, /metrics
EXPOSE 50053 8081
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["/triad-monitor", "healthcheck"]
ENTRYPOINT ["/triad-monitor"]
