# syntax=docker/dockerfile:1
# One image for both services; docker-compose.yml picks the command (auth-service or
# resource-service). Builds from bundled C sources (SQLite, and libpq with OpenSSL, which need
# perl and make: the rust image has both), so no -dev package is needed, at build or run time.
#
# The dependencies are compiled in a layer of their own (cargo-chef): a change to the project's
# sources rebuilds only the project's crates.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe: every manifest and the lock file, without the sources. It changes only when the
# dependencies do, so the cook below stays cached across source edits.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked -p auth-service -p resource-service --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked -p auth-service -p resource-service \
    && install -D -m 0755 target/release/auth-service target/release/resource-service -t /out/

FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: the roots for an https:// JWKS_URL, rediss:// REDIS_URL or a PostgreSQL
# sslmode=verify-full. bash (part of the base image) runs the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tokenauth \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin tokenauth \
    && mkdir -p /data/files \
    && chown -R 10001:10001 /data
COPY --from=build /out/auth-service /out/resource-service /usr/local/bin/
COPY --chmod=0755 deploy/healthcheck /usr/local/bin/healthcheck
USER 10001:10001
WORKDIR /data
ENV LOG_FORMAT=json
EXPOSE 8080 8081
# GET /readyz on the port of BIND_ADDR (docker-compose.yml names the port explicitly).
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=12 CMD ["healthcheck"]
# No secret in the image: keys, passwords and URLs come from the environment and mounted files
# at run time.
CMD ["auth-service"]
