# MedGemma Desk — the commands the README shows.
#   make run     install what is missing, build, start the app
#   make test    install what the tests need, run every test (Rust, UI, real window)
#   make build   the release binary at target/release/medgemma-desk, no launch
#   make build-cuda  the same for NVIDIA GPUs (CUDA 13, fetched by models/cuda/toolkit.sh)
#   make bench   benchmarks, written to docs/benchmarks.md
#   make bundle  installable packages (.deb here)
#   make fuzz    coverage-guided fuzzing of the file parsers (FUZZ_SECONDS each)
#   make fixtures regenerate the committed test fixtures (needs Python + PyTorch, and cmake for llama.cpp)
# Every target is idempotent: the second run only does what changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
NPM ?= npm
# Local builds use every instruction this CPU has: the quantized model kernels
# are 2.3x slower without it. Distributed bundles use a stated baseline instead
# (BUNDLE_RUSTFLAGS, x86-64-v3), in their own target folder so the two never
# evict each other's build cache, and are stripped (no debug info: smaller download).
RUSTFLAGS ?= -C target-cpu=native
export RUSTFLAGS
BUNDLE_RUSTFLAGS ?= -C target-cpu=x86-64-v3
# The CUDA build (NVIDIA GPUs): candle's kernels compiled by nvcc 13.0 from
# NVIDIA's own PyPI wheels (models/cuda/toolkit.sh), for one GPU generation
# (90: Hopper H100/H200; 89: Ada; 86: Ampere). Never needed by `make run`.
CUDA_COMPUTE_CAP ?= 90
export CUDA_COMPUTE_CAP
BIN := target/release/medgemma-desk
# Downloads, Python environments and benchmark models live outside the repository.
CACHE ?= $(HOME)/.cache/medgemma-desk
export MEDGEMMA_CACHE := $(CACHE)
TAURI_DRIVER_VERSION := 2.1.0
NODE_MIN := 20.19

# Debian/Ubuntu packages: to build and run the app, and to test the real window.
APT_BUILD := pkg-config build-essential cmake file libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libssl-dev fonts-dejavu-core
APT_TEST := xvfb xauth webkit2gtk-driver xdotool python3-gi gir1.2-gtk-3.0 strace dbus gnome-keyring poppler-utils

UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/vite.config.ts ui/svelte.config.js ui/tsconfig.json

.PHONY: help run build build-cuda test bench fuzz bench-report bundle fixtures ui deps deps-test check-tools clean

help:
	@echo "MedGemma Desk"
	@echo "  make run      build and start the app (installs what is missing)"
	@echo "  make test     run every test: Rust, UI, and the real window under Xvfb"
	@echo "  make build    build the release binary ($(BIN))"
	@echo "  make build-cuda  the same with the CUDA runtime, for NVIDIA GPUs (target/cuda/)"
	@echo "  make bench    run the benchmarks and write docs/benchmarks.md"
	@echo "  make bundle   build the .deb package"
	@echo "  make fuzz     fuzz every file parser FUZZ_SECONDS each (nightly, cargo-fuzz)"
	@echo "  make fixtures regenerate the test fixtures (needs Python and PyTorch)"

# ---------------------------------------------------------------- prerequisites

# Installs the Debian/Ubuntu packages in $(1) that are missing (sudo when not root).
define apt_install
	@if ! command -v dpkg-query >/dev/null; then \
	  echo "==> Not a Debian/Ubuntu system: install the prerequisites listed in README.md by hand"; \
	else \
	  missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "==> Installing system packages:" $$missing; \
	    sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	    $$sudo apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "==> System packages for $(2): all present"; \
	  fi; \
	fi
endef

check-tools:
	@command -v $(CARGO) >/dev/null || { echo "==> Rust is missing: install it with rustup (see README.md), then run make again"; exit 1; }
	@command -v node >/dev/null || { echo "==> Node.js is missing: install Node.js $(NODE_MIN) or newer (see README.md), then run make again"; exit 1; }
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number);const [x,y]="$(NODE_MIN)".split(".").map(Number);process.exit(a>x||(a===x&&b>=y)?0:1)' \
	  || { echo "==> Node.js $$(node --version) is too old: the UI build needs $(NODE_MIN) or newer (see README.md)"; exit 1; }

deps: check-tools
	$(call apt_install,$(APT_BUILD),building the app)

deps-test: deps
	$(call apt_install,$(APT_TEST),the window + privacy + export tests)
	@if ! $(CARGO) install --list | grep -q '^tauri-driver v$(TAURI_DRIVER_VERSION):'; then \
	  echo "==> Installing tauri-driver $(TAURI_DRIVER_VERSION) (cargo install, a few minutes once)"; \
	  $(CARGO) install --locked --quiet tauri-driver --version $(TAURI_DRIVER_VERSION); \
	else echo "==> tauri-driver $(TAURI_DRIVER_VERSION): present"; fi

ui/node_modules/.package-lock.json: ui/package.json ui/package-lock.json
	@echo "==> Installing the UI's Node packages (npm ci)"
	@$(NPM) --prefix ui ci --no-audit --no-fund --loglevel=error
	@touch $@

ui/dist/index.html: ui/node_modules/.package-lock.json $(UI_SOURCES)
	@echo "==> Building the UI (Vite) into ui/dist"
	@$(NPM) --prefix ui run --silent build -- --logLevel warn

ui: ui/dist/index.html

# The independent FHIR R4 validators the export test runs (tests/fhir/validate.js).
tests/fhir/node_modules/.package-lock.json: tests/fhir/package.json tests/fhir/package-lock.json
	@echo "==> Installing the FHIR validators (FHIR.js, HL7 FHIRPath; npm ci in tests/fhir)"
	@$(NPM) --prefix tests/fhir ci --no-audit --no-fund --loglevel=error
	@touch $@

# ---------------------------------------------------------------- the commands

build: deps ui
	@echo "==> Building the app (release, RUSTFLAGS='$(RUSTFLAGS)'; the first build takes ~10 min on 2 cores)"
	@$(CARGO) build --release -p medgemma-desk
	@echo "==> Built $(BIN)"

# The app with the CUDA runtime (needs an NVIDIA driver >= 580 where it runs),
# in its own target folder so the CPU build's cache stays.
build-cuda: deps ui
	@echo "==> Building the app with CUDA (sm_$(CUDA_COMPUTE_CAP)) into target/cuda/release/medgemma-desk"
	@CARGO_TARGET_DIR='$(CURDIR)/target/cuda' models/cuda/toolkit.sh link $(CARGO) build --release -p medgemma-desk --features cuda
	@echo "==> Built target/cuda/release/medgemma-desk"

run: build
	@echo "==> Starting MedGemma Desk"
	@./$(BIN) $(ARGS)

test: deps-test ui tests/fhir/node_modules/.package-lock.json
	@echo "==> Building the app and its tests (release, RUSTFLAGS='$(RUSTFLAGS)')"
	@$(CARGO) test --release --workspace --no-run --quiet
	@tests/run.sh

bench: build $(CACHE)/venv-fixtures/.installed $(CACHE)/venv-dicom/.installed
	@echo "==> Benchmarks (this takes a while; keep the machine otherwise idle)"
	@mkdir -p target/bench
	@tests/fixtures/dicom/bench.sh $(CACHE)/venv-dicom/bin/python $(BIN) 5 > target/bench/imaging.md
	@models/benches/vision.sh $(CACHE)/venv-fixtures/bin/python $(BIN) 2 5 > target/bench/vision.md
	@models/benches/text.sh $(CACHE)/venv-fixtures/bin/python $(BIN) 2 3 > target/bench/text.md
	@models/benches/gguf.sh $(BIN) 2 5 > target/bench/gguf.md
	@tests/store/bench.sh $(BIN) 10000 5 > target/bench/store.md
	@$(MAKE) --no-print-directory bench-report

# Coverage-guided fuzzing of every outside-facing parser (fuzz/; nightly
# toolchain, cargo-fuzz), each target FUZZ_SECONDS in turn; `make test`
# replays the committed corpora without fuzzing.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= dicom gguf safetensors shard_index bundle chat_template templates_toml
fuzz: build
	@command -v cargo-fuzz >/dev/null || { echo "==> Installing cargo-fuzz (once)"; $(CARGO) install --locked --quiet cargo-fuzz; }
	@echo "==> Seeds from the fixtures and the DICOM dev set (fuzz/seeds/)"
	@fuzz/seeds.sh $(BIN)
	@for t in $(FUZZ_TARGETS); do fuzz/run.sh $$t $(FUZZ_SECONDS) || exit 1; done

# Assembles docs/benchmarks.md from the parts in target/bench/.
bench-report:
	@{ echo "# Benchmarks"; echo; \
	  echo "Written by \`make bench\` on $$(date -u +%Y-%m-%d), $$(nproc) cores, $$(awk '/MemTotal/ {printf "%.0f GiB", $$2/1048576}' /proc/meminfo), $$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs). Local build with \`-C target-cpu=native\`."; \
	  for part in target/bench/imaging.md target/bench/store.md target/bench/bundle.md target/bench/gguf.md target/bench/vision.md target/bench/text.md; do [ -f $$part ] && { echo; cat $$part; }; done; } > docs/benchmarks.md
	@echo "==> Wrote docs/benchmarks.md"

bundle: deps ui
	@echo "==> Building the .deb for the x86-64-v3 baseline (RUSTFLAGS='$(BUNDLE_RUSTFLAGS)')"
	@RUSTFLAGS='$(BUNDLE_RUSTFLAGS)' CARGO_TARGET_DIR='$(CURDIR)/target/bundle' \
	  CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
	  ui/node_modules/.bin/tauri build --ci --bundles deb
	@ls -l target/bundle/release/bundle/deb/*.deb

# Python environments for the reference implementations (pinned versions).
$(CACHE)/venv-fixtures/.installed: tests/fixtures/tiny-gemma3/requirements.txt
	@echo "==> Creating the transformers/torch environment in $(CACHE)/venv-fixtures (about 3 GB, once)"
	@python3 -m venv $(CACHE)/venv-fixtures
	@$(CACHE)/venv-fixtures/bin/pip install -q -r $<
	@touch $@

$(CACHE)/venv-dicom/.installed: tests/fixtures/dicom/requirements.txt
	@echo "==> Creating the pydicom environment in $(CACHE)/venv-dicom (once)"
	@python3 -m venv $(CACHE)/venv-dicom
	@$(CACHE)/venv-dicom/bin/pip install -q -r $<
	@touch $@

fixtures: $(CACHE)/venv-fixtures/.installed $(CACHE)/venv-dicom/.installed
	@echo "==> Regenerating the tiny Gemma 3 model and its transformers reference (tests/fixtures/tiny-gemma3)"
	@$(CACHE)/venv-fixtures/bin/python tests/fixtures/tiny-gemma3/generate.py
	@echo "==> Converting the tiny model to a GGUF pair as llama.cpp does (tests/fixtures/tiny-gemma3/gguf)"
	@peer=$$(models/benches/llamacpp.sh) && $$peer/venv/bin/python tests/fixtures/tiny-gemma3/to_gguf.py $$peer/src/vendor/llama.cpp/gguf-py
	@echo "==> Regenerating llama.cpp's answers on the real Gemma 3 270M GGUF (tests/fixtures/gemma3-270m-gguf)"
	@tests/fixtures/gemma3-270m-gguf/generate.sh
	@echo "==> Fetching the DICOM dev set and regenerating its pydicom reference (tests/fixtures/dicom)"
	@tests/fixtures/dicom/fetch.sh --quiet >/dev/null
	@$(CACHE)/venv-dicom/bin/python tests/fixtures/dicom/generate_expected.py
	@git status --short tests/fixtures || true

clean:
	$(CARGO) clean
	rm -rf ui/dist ui/node_modules
