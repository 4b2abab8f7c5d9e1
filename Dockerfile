# One image for both services; docker-compose.yml picks the command.
# Builds from bundled C sources (SQLite, libpq, aws-lc): no -dev packages needed.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p auth-service -p resource-service

FROM debian:bookworm-slim
# CA roots for an https:// JWKS_URL or rediss:// REDIS_URL.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data tokenauth \
    && mkdir -p /data/files && chown -R tokenauth /data
COPY --from=build /src/target/release/auth-service /src/target/release/resource-service /usr/local/bin/
COPY deploy/healthcheck /usr/local/bin/healthcheck
USER tokenauth
WORKDIR /data
ENV LOG_FORMAT=json
CMD ["auth-service"]
