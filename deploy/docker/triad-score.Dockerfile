# triad-score: built FROM scratch from the static binary and the model
# repository (models/ minus Python and timing files) that
# deploy/build-images.sh stages next to this file.
FROM scratch
COPY triad-score /triad-score
COPY --chown=65532:65532 tmp /tmp
COPY models /models
# The outcome spool: every answered request's outcomes are on disk here
# until the monitor has them (docs/operations.md). A volume, so a restarted
# container replays what its predecessor had not delivered.
COPY --chown=65532:65532 data /data
# mimalloc commits its first arena on demand, not eagerly: idle RSS
# 31 -> 17 MiB (scorer), 17 -> 6 MiB (preprocess); see docs/performance.md.
# The server and its `healthcheck` subcommand both read TRIAD_SCORE_ADDR, so
# the health check always probes the port the server listens on.
# TRIAD_PREPROCESS_URL and TRIAD_MONITOR_URL are set by the deployment.
ENV TRIAD_SCORE_ADDR=0.0.0.0:50052 \
    TRIAD_SCORE_HTTP_ADDR=0.0.0.0:8080 \
    TRIAD_MODELS_DIR=/models \
    TRIAD_SCORE_SPOOL_DIR=/data/spool \
    RUST_LOG=info \
    NO_COLOR=1 \
    MIMALLOC_ARENA_EAGER_COMMIT=0
USER 65532:65532
VOLUME ["/data"]
# 50052 gRPC (triad.v1.Scorer, Open Inference Protocol, health, reflection);
# 8080 HTTP (POST /budget_expense_matcher/, /metrics)
EXPOSE 50052 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["/triad-score", "healthcheck"]
ENTRYPOINT ["/triad-score"]
