#!/usr/bin/env bash
# Install test: `cmake --install` the build tree into a temporary prefix, check the installed
# headers are self-contained (no private src/ headers), then configure, build and run the
# consumer project tests/consumer/ against that prefix with find_package(anvil).
#   bash tests/cli/install_consumer.sh <anvil-binary> <source-dir>
set -euo pipefail
anvil_bin=$1
src=$(cd "$2" && pwd)
build=$(cd "$(dirname "$anvil_bin")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/anvil-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install_consumer: FAIL: $*" >&2; exit 1; }

[ -f "$build/CMakeCache.txt" ] || fail "$build is not a CMake build directory"
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }

# Headers: present, no private includes, each compiles on its own against the prefix only.
incdir=$prefix/include/anvil
[ -f "$incdir/builder.h" ] || fail "builder.h was not installed"
ls "$prefix"/lib*/libanvil.so* >/dev/null 2>&1 || fail "libanvil.so was not installed"
ls "$prefix"/lib*/cmake/anvil/anvilConfig.cmake >/dev/null 2>&1 || fail "anvilConfig.cmake was not installed"
if grep -nE '#[[:space:]]*include[[:space:]]*"' "$incdir"/*.h | grep -vE '#[[:space:]]*include[[:space:]]*"anvil/' ; then
  fail "installed headers include non-public headers (above)"
fi
if grep -nE '#[[:space:]]*include[[:space:]]*[<"](core|graph|backend|import|verify)/' "$incdir"/*.h; then
  fail "installed headers include private src/ headers (above)"
fi
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$cxx" ] || cxx=c++
for h in "$incdir"/*.h; do
  echo "#include <anvil/$(basename "$h")>" |
    (cd "$tmp" && "$cxx" -std=c++20 -fsyntax-only -I"$prefix/include" -x c++ -) ||
    fail "installed header $(basename "$h") does not compile on its own"
done

# The consumer project.
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src/tests/consumer" -B "$tmp/consumer" "${gen[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log" >&2; fail "configuring the consumer failed"; }
grep -q "$build" "$tmp/consumer/CMakeCache.txt" && fail "the consumer found the build tree, not the prefix"
cmake --build "$tmp/consumer" >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; fail "building the consumer failed"; }
out=$("$tmp/consumer/consumer") || fail "the consumer exited with an error: $out"
echo "$out"
case "$out" in *"consumer OK"*) ;; *) fail "unexpected consumer output" ;; esac
# The consumer must run against the installed library, not the build tree's.
if command -v ldd >/dev/null; then
  libs=$(ldd "$tmp/consumer/consumer")
  # (no grep -q in pipelines: with pipefail an early exit would SIGPIPE the writer)
  grep -F "libanvil" <<<"$libs" | grep -F "$prefix/" >/dev/null ||
    { echo "$libs" >&2; fail "the consumer does not use the installed libanvil"; }
fi
echo "install_consumer: OK"
