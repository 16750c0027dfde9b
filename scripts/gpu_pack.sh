#!/usr/bin/env bash
# Builds Anvil with the cuda backend HERE (no GPU needed) and packs what the GPU machine needs
# into .devrun/bundle.tar.xz: the stripped `anvil` and `anvil_cuda_tests` binaries, libanvil.so,
# and every shared library they load from this machine except
#   - glibc's (libc, libm, libpthread, libdl, librt, libresolv, ld-linux, ...): the GPU
#     machine's glibc is newer, and a program must use the loader's own libc;
#   - libstdc++ and libgcc_s: the GPU machine's are newer and backward compatible;
#   - the CUDA libraries (libcuda, libcudart, libcudnn*, libcublas*, ... and anything under
#     /usr/local/cuda): they come from the GPU machine (driver, PyTorch's cuDNN, the toolkit).
# scripts/gpu_suite.sh unpacks it on the GPU machine (see bench/README.md, "GPU").
#
#   bash scripts/gpu_pack.sh [--build-dir build-gpu] [--jobs 2] [--no-build]
#
# The GPU tests read their fixtures from the repository (tests/data/..., models/demo/...), which
# travels to the GPU machine with the working tree; they are not copied into the bundle.
# .devrun/ ignores itself (.devrun/.gitignore: `*`, so it works in a git worktree too, whose
# .git is a file) and is what the lead passes as `carry`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=build-gpu JOBS=2 DO_BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_pack.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$BUILD" in /*) B="$BUILD" ;; *) B="$ROOT/$BUILD" ;; esac
cd "$ROOT"

# --- build ------------------------------------------------------------------------------------
if [ "$DO_BUILD" = 1 ]; then
  if [ ! -f "$B/build.ninja" ] || ! grep -q '^ANVIL_CUDA:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
    CCACHE_BASEDIR="$ROOT" nice -n 19 cmake -S "$ROOT" -B "$B" -G Ninja -DANVIL_CUDA=ON \
      -DCMAKE_BUILD_TYPE=Release -DANVIL_BUILD_EXAMPLES=OFF -DANVIL_WERROR=ON
  else
    # Re-run the globs (new src/backend/cuda/*.cu, tests/cuda/*.cpp).
    CCACHE_BASEDIR="$ROOT" nice -n 19 cmake "$B" >/dev/null
  fi
  targets=(anvil_cli)
  all_targets="$(ninja -C "$B" -t targets all 2>/dev/null || true)"
  if grep -q '^anvil_cuda_tests:' <<<"$all_targets"; then
    targets+=(anvil_cuda_tests)
  else
    echo "gpu_pack.sh: no anvil_cuda_tests target (tests/cuda/*.cpp missing?): packing without it" >&2
  fi
  CCACHE_BASEDIR="$ROOT" nice -n 19 ninja -C "$B" -j"$JOBS" "${targets[@]}"
fi
[ -x "$B/anvil" ] || { echo "gpu_pack.sh: no $B/anvil (build failed?)" >&2; exit 1; }
grep -q '^ANVIL_CUDA:BOOL=ON' "$B/CMakeCache.txt" ||
  { echo "gpu_pack.sh: $B is not configured with -DANVIL_CUDA=ON" >&2; exit 1; }

# --- stage ------------------------------------------------------------------------------------
STAGE="$B/gpu-bundle"
rm -rf "$STAGE"
mkdir -p "$STAGE/bin" "$STAGE/lib"
bins=("$B/anvil")
[ -x "$B/tests/anvil_cuda_tests" ] && bins+=("$B/tests/anvil_cuda_tests")
[ -x "$B/anvil_cuda_tests" ] && bins+=("$B/anvil_cuda_tests")
for f in "${bins[@]}"; do
  strip --strip-unneeded -o "$STAGE/bin/$(basename "$f")" "$f"
done
# libanvil.so.X.Y.Z plus its soname / dev links (as links).
real="$(readlink -f "$B/libanvil.so")"
strip --strip-unneeded -o "$STAGE/lib/$(basename "$real")" "$real"
for l in "$B"/libanvil.so*; do
  [ -L "$l" ] && ln -sf "$(basename "$real")" "$STAGE/lib/$(basename "$l")"
done

# Libraries left to the GPU machine (by soname).
skip_re='^(libc\.so|libm\.so|libmvec\.so|libpthread\.so|libdl\.so|librt\.so|libresolv\.so|libutil\.so|libanl\.so|libnss_|libBrokenLocale\.so|libthread_db\.so|ld-linux|linux-vdso|libstdc\+\+\.so|libgcc_s\.so|libcuda\.so|libcudart\.so|libcudnn|libcublas|libcublasLt|libnvrtc|libnvJitLink|libnvidia-|libcufft|libcurand|libcusparse|libcusolver|libnccl)'
missing=0
# The closure of every binary's and libanvil's needs, as the loader resolves it here.
while read -r name path; do
  [ -n "$name" ] || continue
  if [[ "$name" =~ $skip_re ]] || [[ "$path" == /usr/local/cuda* ]]; then continue; fi
  if [ "$path" = "not" ] || [ ! -e "$path" ]; then
    echo "gpu_pack.sh: $name is not found here" >&2; missing=1; continue
  fi
  [ -e "$STAGE/lib/$name" ] || cp -L "$path" "$STAGE/lib/$name"
done < <(for f in "$STAGE/bin/"* "$STAGE/lib/$(basename "$real")"; do
           LD_LIBRARY_PATH="$STAGE/lib" ldd "$f"
         done | awk '/=>/ {print $1, $3}' | sort -u)
[ "$missing" = 0 ] || exit 1

# Check: with only the bundle (and the system's glibc / libstdc++), every library but the
# CUDA ones resolves.
unresolved="$(for f in "$STAGE/bin/"* "$STAGE/lib/"*.so*; do
  LD_LIBRARY_PATH="$STAGE/lib" ldd "$f" 2>/dev/null | awk -v f="$(basename "$f")" '/not found/ {print f": "$1}'
done | sort -u)"
leak="$(for f in "$STAGE/bin/"* "$STAGE/lib/"*.so*; do LD_LIBRARY_PATH="$STAGE/lib" ldd "$f" 2>/dev/null; done |
  awk '/=>/ {print $1, $3}' | sort -u | while read -r n p; do
    case "$p" in "$STAGE"/*|/usr/local/cuda*) continue ;; esac
    [[ "$n" =~ $skip_re ]] || echo "$n => $p"
  done)"
[ -z "$unresolved" ] || { echo "gpu_pack.sh: unresolved in the bundle:"; echo "$unresolved"; } >&2
[ -z "$leak" ] || { echo "gpu_pack.sh: resolved outside the bundle (should be bundled):"; echo "$leak"; exit 1; } >&2

cudnn_hdr="$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) / {printf "%s%s", sep, $3; sep="."}' \
  "$(grep -E '^CUDNN_INCLUDE_DIR:' "$B/CMakeCache.txt" | cut -d= -f2)/cudnn_version.h" 2>/dev/null || true)"
{
  echo "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src tools include CMakeLists.txt tests/cuda 2>/dev/null || echo +dirty)"
  echo "built $(date -u '+%Y-%m-%d %H:%M UTC') on $(. /etc/os-release && echo "$PRETTY_NAME"), $(gcc --version | head -1)"
  echo "cuda $(/usr/local/cuda/bin/nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p'), cudnn headers ${cudnn_hdr:-?}, GPU code $(grep -o -- '--generate-code=arch=compute_[0-9a-z]*,code=[^ ]*' "$B/build.ninja" | sort -u | sed 's/--generate-code=//' | paste -sd' ')"
  # The tests read fixtures under the source dir compiled in (ANVIL_SOURCE_DIR); gpu_suite.sh
  # links these paths to its checkout and to the unpacked bundle.
  echo "source_dir $ROOT"
  echo "binary_dir $B"
  echo "cuda libraries the GPU machine provides:"
  for f in "$STAGE/bin/"* "$STAGE/lib/"*.so*; do LD_LIBRARY_PATH="$STAGE/lib" ldd "$f" 2>/dev/null; done |
    awk '/=>/ {print $1}' | sort -u | grep -E '^lib(cuda|cudart|cudnn|cublas|nvrtc|nvJitLink)' | sed 's/^/  /'
  echo "files:"
  (cd "$STAGE" && find . -type f ! -name MANIFEST -printf '  %P %s\n' | sort)
} > "$STAGE/MANIFEST"

# --- pack -------------------------------------------------------------------------------------
mkdir -p "$ROOT/.devrun"
[ -f "$ROOT/.devrun/.gitignore" ] || printf '*\n' > "$ROOT/.devrun/.gitignore"
tmp="$ROOT/.devrun/bundle.tar.xz.tmp"
tar -C "$STAGE" -cf - --owner=0 --group=0 . | nice -n 19 xz -9 -T2 > "$tmp"
mv "$tmp" "$ROOT/.devrun/bundle.tar.xz"
cp "$STAGE/MANIFEST" "$ROOT/.devrun/MANIFEST"
cat "$STAGE/MANIFEST"
size=$(stat -c %s "$ROOT/.devrun/bundle.tar.xz")
echo "gpu_pack.sh: .devrun/bundle.tar.xz $(awk -v s="$size" 'BEGIN {printf "%.1f MiB", s / 1048576}')" \
     "($(du -sh "$STAGE" | cut -f1) unpacked)"
if [ "$size" -gt $((40 * 1048576)) ]; then
  echo "gpu_pack.sh: the bundle is over 40 MiB" >&2; exit 1
fi
