# Thin wrapper: everything real lives in meson.build and .ci/deps.sh.
#   make        install what is missing, configure, build build/pilot/pilot-discovery
#   make demo   ... and run the control plane on manifests/samples
#   make test   ... build the test peers (tests/peers: kube-apiserver, etcd, kubectl,
#               xdscheck, grpcxds, kialicheck from pinned Go modules, cached in
#               PEERS_CACHE) and run the whole suite under ASan+UBSan (build-san/) and
#               the threaded unit tests under TSan (build-tsan/), ending with one line
#               "N passed, N failed, N skipped"
#   make peers  only the test peers
#   make fuzz   every libFuzzer target (clang) for 10 million runs or 30 min each
#               (FUZZ_RUNS, FUZZ_TIME), new-coverage inputs merged into tests/fuzz/corpus
BUILD ?= build
SAN_BUILD ?= build-san
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
DEMO_ARGS ?=
# The Go module and build caches and the peers' binaries: outside the checkout, so a fresh
# clone on the same machine (CI) reuses them; a cold build takes several minutes.
PEERS_CACHE ?= $(HOME)/.cache/pilot-peers

.PHONY: all deps build build-san build-tsan peers demo test bench fuzz clean

all: build

deps:
	@bash .ci/deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --buildtype=debugoptimized
	ninja -C $(BUILD)

build-san: deps
	@[ -f $(SAN_BUILD)/build.ninja ] || meson setup $(SAN_BUILD) --buildtype=debug \
	    -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(SAN_BUILD)

# ThreadSanitizer for our own threaded code (model thread, config-directory watcher, HTTP
# server, JWKS fetcher). Only those tests are built: gRPC's C core is not TSan-instrumented.
TSAN_TARGETS = tests/pilot/model/test_model tests/pilot/obs/test_http tests/pilot/obs/test_metrics tests/pilot/obs/test_debug_table tests/pilot/obs/test_debug_auth \
	tests/pilot/cfgdir/test_cfgdir tests/pilot/cfgdir/test_filewatch tests/pilot/jwks/test_jwks
build-tsan: deps
	@[ -f $(TSAN_BUILD)/build.ninja ] || meson setup $(TSAN_BUILD) --buildtype=debug \
	    -Db_sanitize=thread -Db_lundef=false
	ninja -C $(TSAN_BUILD) $(TSAN_TARGETS)

peers: deps
	@bash tests/peers/build.sh $(PEERS_CACHE)

demo: build
	@bash manifests/samples/demo.sh $(BUILD) $(DEMO_ARGS)

test: build-san build-tsan peers
	@PILOT_PEERS_BIN=$(PEERS_CACHE)/bin PILOT_PEERS_CACHE=$(PEERS_CACHE) \
	    bash tests/run.sh $(SAN_BUILD) $(TSAN_BUILD)

bench: build
	@bash tests/bench/run.sh $(BUILD)

fuzz: deps
	@bash tests/fuzz/run.sh $(FUZZ_BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
