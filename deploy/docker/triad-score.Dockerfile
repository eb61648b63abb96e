# triad-score: built FROM scratch from the static binary and the model
# repository (models/ minus Python and timing files) that
# deploy/build-images.sh stages next to this file.
FROM scratch
COPY triad-score /triad-score
COPY --chown=65532:65532 tmp /tmp
COPY models /models
# The server and its `healthcheck` subcommand both read TRIAD_SCORE_ADDR, so
# the health check always probes the port the server listens on.
# TRIAD_PREPROCESS_URL and TRIAD_MONITOR_URL are set by the deployment.
ENV TRIAD_SCORE_ADDR=0.0.0.0:50052 \
    TRIAD_SCORE_HTTP_ADDR=0.0.0.0:8080 \
    TRIAD_MODELS_DIR=/models \
    RUST_LOG=info \
    NO_COLOR=1
USER 65532:65532
# 50052 gRPC (triad.v1.Scorer, Open Inference Protocol, health, reflection);
# 8080 HTTP (POST /budget_expense_matcher/, /metrics)
EXPOSE 50052 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["/triad-score", "healthcheck"]
ENTRYPOINT ["/triad-score"]
