#!/usr/bin/env bash
# The taxii2-client interop test again, over HTTPS with HTTP Basic auth: a CA and a
# server certificate made here with openssl, one user whose hash comes from
# `taxiway-server hash-password`. Needs an already built binary (run-all.sh builds it).
#
#   cargo build -p taxiway-server && bash tests/run.d/20-interop-https.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${TAXIWAY_BIN:-$repo/target/debug/taxiway-server}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tls" "$work/credentials"

ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=Taxiway interop CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req "${ec[@]}" -subj "/CN=localhost" \
    -keyout "$work/tls/tls.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
    > "$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/server.ext" -out "$work/tls/tls.crt" 2>/dev/null

password="$(openssl rand -hex 16)"
hash="$(printf '%s\n' "$password" | "$bin" hash-password)"
cat > "$work/credentials/users.toml" <<TOML
[[users]]
name = "interop"
password_hash = "$hash"
groups = ["producers"]
TOML

# requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override a
# session's `verify`, so point them at the test CA too.
REQUESTS_CA_BUNDLE="$work/ca.crt" CURL_CA_BUNDLE="$work/ca.crt" \
TAXIWAY_BIN="$bin" \
TAXII_USER=interop TAXII_PASSWORD="$password" TAXII_CA="$work/ca.crt" \
TAXIWAY_TLS_DIR="$work/tls" TAXIWAY_CREDENTIALS_DIR="$work/credentials" \
    bash "$repo/tests/interop/run.sh"
