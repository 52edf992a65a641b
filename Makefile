# Thin wrapper: everything real lives in meson.build and .ci/deps.sh.
#   make        install what is missing, configure, build build/pilot/pilot-discovery
#   make demo   ... and run the control plane on manifests/samples
#   make test   ... and run the whole suite under ASan+UBSan (build-san/), ending with
#               one line "N passed, N failed"
BUILD ?= build
SAN_BUILD ?= build-san
DEMO_ARGS ?=

.PHONY: all deps build build-san demo test bench clean

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

demo: build
	@bash manifests/samples/demo.sh $(BUILD) $(DEMO_ARGS)

test: build-san
	@bash tests/run.sh $(SAN_BUILD)

bench: build
	@bash tests/bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
