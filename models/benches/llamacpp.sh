#!/usr/bin/env bash
# Builds the peer we compare against: llama.cpp as vendored by the pinned
# llama-cpp-python source package (its Python bindings, its libllama, and
# llama-bench), once, into $MEDGEMMA_CACHE/llamacpp-$VERSION. Prints the
# folder. Used by `make bench` and by the GGUF reference generator; the
# app's build and tests never need it.
#
#   models/benches/llamacpp.sh            build if missing, print the folder
#
# The folder then holds:
#   src/                      the unpacked source package (bindings in src/llama_cpp)
#   build/bin/                libllama.so, libggml*.so, llama-bench, llama-quantize
#   venv/                     Python with the bindings' dependencies
# Run Python with PYTHONPATH=<folder>/src LLAMA_CPP_LIB_PATH=<folder>/build/bin.
set -euo pipefail

VERSION=0.3.36
cache="${MEDGEMMA_CACHE:-$HOME/.cache/medgemma-desk}/llamacpp-$VERSION"
say() { echo "==> $*" >&2; }

if [ -x "$cache/build/bin/llama-bench" ] && [ -x "$cache/build/bin/llama-quantize" ] && [ -f "$cache/venv/.installed" ]; then
  echo "$cache"
  exit 0
fi
mkdir -p "$cache"
command -v cmake >/dev/null || { echo "llamacpp.sh: cmake is needed (apt install cmake)" >&2; exit 1; }

if [ ! -d "$cache/src" ]; then
  say "Downloading llama-cpp-python $VERSION (source package, with its vendored llama.cpp)"
  tmp=$(mktemp -d "$cache/.dl.XXXXXX")
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --dest "$tmp" "llama-cpp-python==$VERSION" >&2
  tar -xzf "$tmp"/llama_cpp_python-$VERSION.tar.gz -C "$tmp"
  mv "$tmp/llama_cpp_python-$VERSION" "$cache/src"
  rm -rf "$tmp"
fi

if [ ! -x "$cache/build/bin/llama-bench" ] || [ ! -x "$cache/build/bin/llama-quantize" ]; then
  say "Building llama.cpp (libllama, llama-bench, llama-quantize; native CPU, $(nproc) jobs; ~10 min once)"
  cmake -S "$cache/src/vendor/llama.cpp" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON \
    > "$cache/cmake.log" 2>&1 || { tail -20 "$cache/cmake.log" >&2; exit 1; }
  cmake --build "$cache/build" --target llama llama-bench llama-quantize -j "$(nproc)" > "$cache/build.log" 2>&1 \
    || { tail -30 "$cache/build.log" >&2; exit 1; }
fi

if [ ! -f "$cache/venv/.installed" ]; then
  say "Creating the Python environment for the bindings"
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install --quiet --disable-pip-version-check \
    numpy==2.4.6 typing-extensions==4.16.0 diskcache==5.6.3 jinja2==3.1.6 \
    pyyaml==6.0.4 tqdm==4.70.1 requests==2.34.2 >&2
  touch "$cache/venv/.installed"
fi
echo "$cache"
