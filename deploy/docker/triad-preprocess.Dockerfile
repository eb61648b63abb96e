# triad-preprocess: built FROM scratch from the static binary that
# deploy/build-images.sh stages next to this file (no registry needed).
FROM scratch
COPY triad-preprocess /triad-preprocess
COPY --chown=65532:65532 tmp /tmp
# mimalloc commits its first arena on demand, not eagerly: idle RSS
# 31 -> 17 MiB (scorer), 17 -> 6 MiB (preprocess); see docs/performance.md.
# The server and its `healthcheck` subcommand both read these, so the health
# check always probes the port the server listens on.
ENV TRIAD_PREPROCESS_ADDR=0.0.0.0:50051 \
    TRIAD_PREPROCESS_HTTP_ADDR=0.0.0.0:8082 \
    RUST_LOG=info \
    NO_COLOR=1 \
    MIMALLOC_ARENA_EAGER_COMMIT=0
USER 65532:65532
# 50051 gRPC (triad.v1.Preprocess, health, reflection); 8082 HTTP /metrics
EXPOSE 50051 8082
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["/triad-preprocess", "healthcheck"]
ENTRYPOINT ["/triad-preprocess"]
