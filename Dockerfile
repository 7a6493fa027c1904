# agentbox container image: the MCP server and agentbox-runtime, built on Debian 12.
#
#   docker build -t agentbox .
#   docker run --rm -p 8080:8080 -e AGENTBOX_TOKEN=$(openssl rand -hex 32) agentbox
#
# The server listens on 0.0.0.0:8080 inside the container and refuses to start without a
# bearer token (AGENTBOX_TOKEN or auth.tokens). The local sandbox provider needs Linux
# namespaces, which Docker's default seccomp profile forbids inside containers: either run
# with `--security-opt seccomp=unconfined --security-opt apparmor=unconfined --cap-add SYS_ADMIN`
# (the sandbox then isolates each command), or use the Kubernetes provider
# (AGENTBOX_SANDBOX_PROVIDER=agent-sandbox). `agentbox doctor` says which applies.
# The same image serves as a SandboxTemplate image: command `agentbox-runtime`.

FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config libjansson-dev libmicrohttpd-dev \
        libcurl4-openssl-dev libyaml-dev libseccomp-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY scripts ./scripts
COPY src ./src
COPY schemas ./schemas
COPY config ./config
COPY tests/CMakeLists.txt ./tests/CMakeLists.txt
COPY agentbox.1 ./
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
        -DAGENTBOX_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" --target agentbox agentbox-runtime \
    && DESTDIR=/out cmake --install /build \
    && strip /out/usr/bin/agentbox /out/usr/bin/agentbox-runtime

FROM debian:bookworm-slim
# Runtime libraries only; python3 so execute_python works in local sandboxes.
RUN apt-get update && apt-get install -y --no-install-recommends \
        libjansson4 libmicrohttpd12 libcurl4 libyaml-0-2 libseccomp2 ca-certificates \
        python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/agentbox --create-home agentbox
COPY --from=build /out/ /
USER agentbox
ENV AGENTBOX_STATE_DIR=/var/lib/agentbox \
    AGENTBOX_HTTP_LISTEN=0.0.0.0:8080
EXPOSE 8080
VOLUME /var/lib/agentbox
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["agentbox", "health", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["agentbox"]
CMD ["serve", "--http", "0.0.0.0:8080", "--config", "/etc/agentbox/agentbox.yaml"]
