# agentbox container image: the MCP server and agentbox-runtime, built on Debian 12.
#
#   docker build -t agentbox .
#   docker run --rm -p 8080:8080 -e AGENTBOX_TOKEN=$(openssl rand -hex 32) \
#       --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
#       --security-opt systempaths=unconfined agentbox
#   docker run --rm agentbox doctor        # what this host/container allows, with fixes
#
# The server listens on 0.0.0.0:8080 inside the container and refuses to start without a
# bearer token (AGENTBOX_TOKEN or auth.tokens). It runs as an unprivileged user, so local
# sandboxes use user namespaces, which Docker's defaults forbid in three places: the seccomp
# profile (unshare/clone with namespace flags), the AppArmor profile (mount), and the masked
# /proc paths (a fresh proc may not be mounted, the kernel's mount_too_revealing()). The three
# --security-opt flags above lift exactly those; each sandbox then isolates its commands with
# its own namespaces and seccomp filter. Without them the server refuses to start and names
# the cause; or use the Kubernetes provider (AGENTBOX_SANDBOX_PROVIDER=agent-sandbox).
# Resource limits through cgroups need a writable cgroup (e.g. --cgroupns private with cgroup
# v2 delegated); without one, sandboxes still get rlimits and tmpfs sizes.
# The same image serves as a SandboxTemplate image: command `agentbox-runtime`.
# tests/js/examples/dockerfile.test.mjs checks this file against the build (run by make test).

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
COPY agentbox.1 ./
# The default prefix, /usr/local: what `make install` does, what README.md documents, and
# where examples/k8s/sandbox-template.yaml runs /usr/local/bin/agentbox-runtime from.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr/local \
        -DAGENTBOX_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" --target agentbox agentbox-runtime \
    && DESTDIR=/out cmake --install /build \
    && strip /out/usr/local/bin/agentbox /out/usr/local/bin/agentbox-runtime

FROM debian:bookworm-slim
# Runtime libraries only; python3 so execute_python works in local sandboxes (their /usr is
# this image's, read-only); tini as PID 1, so processes orphaned inside the container (a
# sandbox helper whose spawner died, a kubectl tunnel) are reaped (pid_namespaces(7)).
RUN apt-get update && apt-get install -y --no-install-recommends \
        libjansson4 libmicrohttpd12 libcurl4 libyaml-0-2 libseccomp2 ca-certificates \
        python3 tini \
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
ENTRYPOINT ["/usr/bin/tini", "--", "agentbox"]
CMD ["serve", "--http", "0.0.0.0:8080", "--config", "/usr/local/etc/agentbox/agentbox.yaml"]
