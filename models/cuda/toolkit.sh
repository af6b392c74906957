#!/usr/bin/env bash
# A CUDA 13.0 build toolkit from NVIDIA's own PyPI wheels (pinned by hash), for
# machines without a GPU or a CUDA install: enough to compile candle's CUDA
# kernels (`compile`) or also to link a CUDA binary (`link`). Then runs the
# given command with the environment candle-kernels (cudaforge) and cudarc read.
#
#   models/cuda/toolkit.sh compile cargo check -p medgemma-models --features cuda
#   models/cuda/toolkit.sh link cargo build --release --features cuda
#   models/cuda/toolkit.sh env        # prints the environment, to `source`
#
# The toolkit lives in $MEDGEMMA_CACHE/cuda/13.0 (made once; a stamp says which
# parts are there). Nothing of it is needed by the default (CPU) build.
# CUDA_COMPUTE_CAP picks the GPU generation the kernels are built for (90:
# Hopper, H100/H200; 89: Ada; 86: Ampere laptops). The driver must be 580 or
# newer to run what CUDA 13 builds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
part=${1:?usage: toolkit.sh compile|link|env [command …]}
shift || true
cache=${MEDGEMMA_CACHE:-$HOME/.cache/medgemma-desk}
root=$cache/cuda/13.0
wheels=$cache/cuda/wheels

environment() {
  cat <<EOF
export CUDA_HOME="$root" CUDA_PATH="$root" CUDA_ROOT="$root"
export NVCC="$root/bin/nvcc" PATH="$root/bin:\$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDARC_CUDA_VERSION=13000
export CUDAFORGE_THREADS="\${CUDAFORGE_THREADS:-$(nproc)}"
EOF
}

# Downloads and unpacks the wheels of one requirements file into the root.
unpack() {
  local list=$1
  mkdir -p "$wheels"
  echo "==> Fetching the CUDA 13.0 $(basename "$list" .txt | sed 's/requirements-//') part from PyPI (NVIDIA's wheels, pinned)" >&2
  python3 -m pip download -q --no-deps --only-binary :all: \
    --require-hashes -r "$list" -d "$wheels" >&2
  local tmp
  tmp=$(mktemp -d)
  # Every wheel holds nvidia/cu13/…: together they make an ordinary toolkit root.
  sed -n 's/^\([a-z0-9-]*\)==\([^ ]*\) .*/\1 \2/p' "$list" | while read -r name version; do
    python3 -m zipfile -e "$(ls "$wheels/${name//-/_}-$version-"*.whl | head -n 1)" "$tmp"
  done
  mkdir -p "$root"
  cp -a "$tmp/nvidia/cu13/." "$root/"
  rm -rf "$tmp"
  find "$root" -name '__init__.py' -delete
  # zipfile keeps no modes.
  chmod +x "$root"/bin/* "$root"/nvvm/bin/* 2>/dev/null || true
}

# The linker wants unversioned names, and the driver's libcuda.so (which no
# wheel has) as a stub: each entry point of cuda.h returning "no device". The
# real libcuda.so.1 comes with the NVIDIA driver where the binary runs.
link_names() {
  local lib=$root/lib
  for l in cudart:13 nvrtc:13 curand:10 cublas:13 cublasLt:13; do
    [ -e "$lib/lib${l%%:*}.so.${l##*:}" ] && ln -sf "lib${l%%:*}.so.${l##*:}" "$lib/lib${l%%:*}.so"
  done
  ln -sfn lib "$root/lib64"
  mkdir -p "$lib/stubs"
  local src
  src=$(mktemp --suffix=.c)
  echo '#include <cuda.h>' | gcc -E -P -D__CUDA_API_VERSION_INTERNAL -I"$root/include" -x c - \
    | grep -oP '\bcu[A-Z]\w*(?=\s*\()' | sort -u \
    | awk '{ print "int " $1 "(void) { return 100; }" }' > "$src"
  gcc -shared -fPIC -o "$lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$src"
  rm -f "$src"
}

have() { grep -qx "$1" "$root/.parts" 2>/dev/null; }

case $part in
  env) environment; exit 0 ;;
  compile | link) ;;
  *) echo "usage: toolkit.sh compile|link|env [command …]" >&2; exit 2 ;;
esac
if ! have compile; then
  unpack "$here/requirements-compile.txt"
  echo compile >> "$root/.parts"
fi
if [ "$part" = link ] && ! have link; then
  unpack "$here/requirements-link.txt"
  link_names
  echo link >> "$root/.parts"
fi
"$root/bin/nvcc" --version | grep -q 'release 13.0' || { echo "the CUDA toolkit in $root does not run (nvcc)" >&2; exit 1; }
eval "$(environment)"
[ $# -eq 0 ] || exec "$@"
