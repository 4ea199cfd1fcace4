#!/bin/sh
# Lays out the parts of the image from a source tree, for the Dockerfile and for the pod smoke
# test (tools/chart-check/test/pod-runtime.int.test.ts), so both use the same runtime layout.
#
#   stage.sh manifests <src> <out>  package.json and package-lock.json of the root and of every
#                                   workspace: all `npm ci` needs. The dependency layer is built
#                                   from these alone, so it stays cached while sources change.
#   stage.sh runtime <src> <out>    what the runtime image holds besides node_modules: the compiled
#                                   dist/ and manifest of every library and service. Not tools/*
#                                   (dev stack, CLI, benchmarks, chart checks) and not libs/testing
#                                   (the test harness, a devDependency of every service).
set -eu
mode=${1:?usage: stage.sh manifests|runtime <src> <out>}
src=${2:?source dir}
out=${3:?output dir}
mkdir -p "$out"

copy_manifest() {
  rel=${1#"$src"/}
  mkdir -p "$out/$rel"
  cp "$1/package.json" "$out/$rel/package.json"
}

case "$mode" in
  manifests)
    cp "$src/package.json" "$src/package-lock.json" "$out/"
    # The root package.json's workspace globs.
    for pkg in "$src"/libs/* "$src"/services/* "$src"/tools/* "$src"/tools/bench/*; do
      if [ -f "$pkg/package.json" ]; then copy_manifest "$pkg"; fi
    done
    ;;
  runtime)
    cp "$src/package.json" "$out/"
    for pkg in "$src"/libs/* "$src"/services/*; do
      [ -f "$pkg/package.json" ] || continue
      [ "$pkg" = "$src/libs/testing" ] && continue
      if [ ! -d "$pkg/dist" ]; then
        echo "stage.sh: $pkg has no dist/ (run the build first)" >&2
        exit 1
      fi
      copy_manifest "$pkg"
      cp -R "$pkg/dist" "$out/${pkg#"$src"/}/dist"
    done
    ;;
  *)
    echo "stage.sh: unknown mode $mode (manifests or runtime)" >&2
    exit 64
    ;;
esac
