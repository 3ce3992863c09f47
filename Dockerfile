# Taxiway container images, one build target per binary:
#
#   docker build --target server   -t taxiway/server:0.1.0   .
#   docker build --target operator -t taxiway/operator:0.1.0 .
#
# Both targets share one build stage, so building the second is instant. The runtime
# images hold the binary, the shared libraries it links (glibc, libgcc_s — copied from
# the build stage, whatever `ldd` lists), CA certificates and a passwd entry for the
# unprivileged user 65532, on top of RUNTIME_IMAGE (default: `scratch`, empty).
#
# Build arguments (the base images are arguments so that a build without registry
# access can use locally made bases: `docker import` a rootfs, then pass its tag):
#   BUILDER_IMAGE  a Debian-based image with a Rust toolchain (cargo, rustc, a C
#                  compiler for SQLite) new enough for the workspace
#   RUNTIME_IMAGE  the base of the final images
# Works with the classic builder and with BuildKit. See docs/kubernetes.md for loading
# the images into kind, k3d, minikube or containerd without a registry.
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=scratch

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p taxiway-server -p taxiway-operator
# Assemble the root filesystems: /rootfs/common (libraries, certificates, users) and
# one directory per binary.
RUN set -eu; \
    common=/rootfs/common; \
    mkdir -p "$common/etc/ssl/certs" "$common/tmp" "$common/home/nonroot" \
        "$common/etc/taxiway/config" "$common/etc/taxiway/credentials" "$common/var/lib/taxiway"; \
    chmod 1777 "$common/tmp"; \
    for bin in taxiway-server taxiway-operator; do \
        install -D -m 0755 "target/release/$bin" "/rootfs/$bin/usr/local/bin/$bin"; \
        for lib in $(ldd "target/release/$bin" | grep -o '/[^ ]*' | sort -u); do \
            cp --parents -L -n "$lib" "$common/"; \
        done; \
    done; \
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then \
        cp /etc/ssl/certs/ca-certificates.crt "$common/etc/ssl/certs/"; \
    fi; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
        > "$common/etc/passwd"; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > "$common/etc/group"; \
    chown 65532:65532 "$common/home/nonroot" "$common/var/lib/taxiway"; \
    if ldd target/release/taxiway-server target/release/taxiway-operator | grep 'not found'; then \
        echo 'a shared library is missing' >&2; exit 1; \
    fi

# The TAXII server. The operator runs it with its own arguments: the config,
# credentials and TLS directories mounted from a ConfigMap and Secrets under
# /etc/taxiway/, the store on a PVC at /var/lib/taxiway. The default command serves a
# config directory mounted at /etc/taxiway/config and the users of a credentials
# directory mounted at /etc/taxiway/credentials:
#   docker run -v CONFIG:/etc/taxiway/config:ro -v CREDENTIALS:/etc/taxiway/credentials:ro ...
# Without users it refuses to start rather than serve every collection to everyone
# (append --allow-anonymous-open to the command to do that on purpose).
FROM ${RUNTIME_IMAGE} AS server
COPY --from=build /rootfs/common/ /
COPY --from=build /rootfs/taxiway-server/ /
USER 65532:65532
# TAXII (HTTPS when given --tls-dir, else HTTP); admin (/healthz /readyz /metrics).
EXPOSE 9443 9090
ENTRYPOINT ["/usr/local/bin/taxiway-server"]
CMD ["serve", "--config-dir", "/etc/taxiway/config", "--credentials-dir", "/etc/taxiway/credentials", "--data-dir", "/var/lib/taxiway", "--listen", "0.0.0.0:9443", "--admin-listen", "0.0.0.0:9090"]

# The operator (the default target). The Helm chart runs `taxiway-operator run ...`.
FROM ${RUNTIME_IMAGE} AS operator
COPY --from=build /rootfs/common/ /
COPY --from=build /rootfs/taxiway-operator/ /
USER 65532:65532
# Admin listener: /healthz /readyz /metrics.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/taxiway-operator"]
CMD ["run", "--admin-listen", "0.0.0.0:8080"]
