#!/usr/bin/env bash
# The chart ships a copy of the generated CRDs (charts/taxiway/files/crds/, rendered by
# templates/crds.yaml); the source of truth is the repository's crds/, generated from
# operator/src/crd/.
#
#   tests/helm/crds.sh check   fail, with a diff, if the copy differs from crds/
#   tests/helm/crds.sh sync    make the copy equal to crds/
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
src=$repo/crds
copy=$repo/charts/taxiway/files/crds

case ${1:-} in
  check)
    if ! compgen -G "$src/*.yaml" >/dev/null; then
      echo "FAIL: no CRDs in crds/ (generate them from the operator crate first)" >&2
      exit 1
    fi
    if ! diff -r -u "$src" "$copy"; then
      echo "FAIL: charts/taxiway/files/crds/ differs from crds/; run: bash tests/helm/crds.sh sync" >&2
      exit 1
    fi
    names=("$src"/*.yaml)
    echo "ok: the chart's CRDs equal crds/ (${names[*]##*/})"
    ;;
  sync)
    mkdir -p "$copy"
    rm -f "$copy"/*.yaml
    cp "$src"/*.yaml "$copy"/
    names=("$src"/*.yaml)
    echo "copied ${#names[@]} CRDs into charts/taxiway/files/crds/"
    ;;
  *)
    echo "usage: $0 check|sync" >&2
    exit 2
    ;;
esac
