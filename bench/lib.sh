# bench/lib.sh - sourced by the bench/*/run.sh scripts: where the repository is, and how
# they build what they measure.
#   root             the repository root
#   build            the release tree: $BUILD, default $root/build
#   bench_build T..  configure $build (RelWithDebInfo) when it has never been configured,
#                    then build the targets T.. quietly
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD:-$root/build}"

bench_build() {
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$build" --target "$@" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
}
