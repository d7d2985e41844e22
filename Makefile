# neuromap — `make` builds ./neuromap, the library (build/opt/libneuromap.a,
# .so) and the examples; `make test` runs the whole suite in an optimised
# build and under AddressSanitizer + UndefinedBehaviorSanitizer.

CC       ?= cc
PKGS      = openblas libpcre2-8 libcjson sqlite3 libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lopenblas -lpcre2-8 -lcjson -lsqlite3 -lmicrohttpd)
WARN      = -Wall -Wextra -Wshadow -Wno-unused-parameter -Werror=implicit-function-declaration
BASE      = -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(PKG_CFLAGS) -Isrc -MMD -MP
LIBS      = $(PKG_LIBS) -lm -pthread
# Open MPI, for the program only (src/cli/mpi.c): the library never links it.
# Without it neuromap builds all the same, and mpirun/srun runs are refused.
MPI_CFLAGS := $(shell pkg-config --exists ompi-c 2>/dev/null && echo -DNEUROMAP_MPI $$(pkg-config --cflags ompi-c))
MPI_LIBS   := $(shell pkg-config --exists ompi-c 2>/dev/null && pkg-config --libs ompi-c)

# A portable binary: ordinary code for any x86-64 with SSE4.2 (x86-64-v2),
# or the compiler's default elsewhere (aarch64: the portable C paths). The
# AVX2 / AVX-512 kernels are compiled per function for their own target and
# chosen at run time (src/base/cpu.c); never -march=native here.
# build/nox86/ compiles the x86 kernels out (-DNM_NO_X86): the portable
# build, as on aarch64, checked on x86 (`make build/nox86/all`).
ARCH     := $(if $(findstring x86_64,$(shell $(CC) -dumpmachine)),-march=x86-64-v2)
BASE     += $(ARCH)
OPT_FLAGS  = -O2 -g
ASAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

# src/ holds one folder per layer (README, "Layout"); the layers below cli are
# the library (libneuromap, public header include/neuromap.h), src/cli is the
# program, which sees the library only through that header.
LAYERS    = base tensor model formats text lens infer store report synth
LIB_SRC   = $(foreach d,$(LAYERS),$(wildcard src/$(d)/*.c)) # tests link the library, not the commands
LIB_HDR   = $(foreach d,$(LAYERS),$(wildcard src/$(d)/*.h))
CLI_SRC   = $(wildcard src/cli/*.c)
TESTS     = $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
EXAMPLES  = $(patsubst examples/%.c,%,$(wildcard examples/*.c))

.PHONY: all test test-opt test-asan clean fuzz fuzz-build fuzz-smoke python
all: neuromap $(addprefix build/opt/examples/,$(EXAMPLES) $(addsuffix -shared,$(EXAMPLES)))

# ---- the public header: generated from the layer headers (not committed) -----
include/neuromap.h: scripts/amalgamate-header $(LIB_HDR)
	@mkdir -p $(@D)
	scripts/amalgamate-header > $@.tmp && mv $@.tmp $@

# ---- per-mode build trees: build/opt and build/asan -------------------------
# Library objects are position-independent, so one set makes both the static
# library (which ./neuromap, the tests and the examples link) and the shared
# one, linked --no-undefined: it needs nothing from the program. The program
# (src/cli) and the examples see only include/neuromap.h; each example is
# linked twice, with the static library and (NAME-shared) with the shared one.
define mode
build/$(1)/%.o: src/%.c
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $(2) -fPIC -c $$< -o $$@
build/$(1)/cli/%.o: src/cli/%.c include/neuromap.h
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $(2) -Iinclude $$(MPI_CFLAGS) -c $$< -o $$@
build/$(1)/tests/%.o: tests/%.c
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $(2) -Itests -c $$< -o $$@
build/$(1)/examples/%.o: examples/%.c include/neuromap.h
	@mkdir -p $$(@D)
	$$(CC) $$(BASE) $(2) -Iinclude -c $$< -o $$@
build/$(1)/libneuromap.a: $(patsubst src/%.c,build/$(1)/%.o,$(LIB_SRC))
	rm -f $$@ && $$(AR) rcs $$@ $$^
build/$(1)/libneuromap.so: $(patsubst src/%.c,build/$(1)/%.o,$(LIB_SRC))
	$$(CC) $(2) -shared -Wl,--no-undefined $$^ -o $$@ $$(LIBS)
build/$(1)/neuromap: $(patsubst src/%.c,build/$(1)/%.o,$(CLI_SRC)) build/$(1)/web_assets.o build/$(1)/libneuromap.a
	$$(CC) $(2) $$^ -o $$@ $$(LIBS) $$(MPI_LIBS)
build/$(1)/web_assets.o: build/web_assets.c
	$$(CC) $$(BASE) $(2) -c $$< -o $$@
build/$(1)/tests/%: build/$(1)/tests/%.o build/$(1)/libneuromap.a
	$$(CC) $(2) $$^ -o $$@ $$(LIBS)
build/$(1)/examples/%: build/$(1)/examples/%.o build/$(1)/libneuromap.a
	$$(CC) $(2) $$^ -o $$@ $$(LIBS)
build/$(1)/examples/%-shared: build/$(1)/examples/%.o build/$(1)/libneuromap.so
	$$(CC) $(2) $$< -o $$@ -Lbuild/$(1) -lneuromap '-Wl,-rpath,$$$$ORIGIN/..' $$(LIBS)
build/$(1)/all: build/$(1)/neuromap $(addprefix build/$(1)/tests/,$(TESTS)) \
                $(addprefix build/$(1)/examples/,$(EXAMPLES) $(addsuffix -shared,$(EXAMPLES)))
endef
$(eval $(call mode,opt,$(OPT_FLAGS)))
$(eval $(call mode,asan,$(ASAN_FLAGS)))
$(eval $(call mode,nox86,$(OPT_FLAGS) -DNM_NO_X86))
.PHONY: build/opt/all build/asan/all build/nox86/all
# Keep test objects between runs (they are intermediate to make).
.SECONDARY:

# The web atlas's pages (web/), compiled in: serve reads no files.
build/web_assets.c: scripts/embed-web $(shell find web -type f 2>/dev/null)
	@mkdir -p $(@D)
	scripts/embed-web web $@

neuromap: build/opt/neuromap
	cp $< $@

# ---- benchmarks built from C (not part of `make test`) ------------------------
# bench/lse_split.c: issue 20's exact-normaliser experiment (its header says how to run it).
build/opt/bench/lse_split: bench/lse_split.c build/opt/libneuromap.a
	@mkdir -p $(@D)
	$(CC) $(BASE) $(OPT_FLAGS) $< build/opt/libneuromap.a -o $@ $(LIBS)
# bench/amx_tile.c: issue 20's AMX product against the tile engine's limits (its header).
build/opt/bench/amx_tile: bench/amx_tile.c build/opt/libneuromap.a
	@mkdir -p $(@D)
	$(CC) $(BASE) $(OPT_FLAGS) $< build/opt/libneuromap.a -o $@ $(LIBS)
# bench/gemm_q.c: issue 14's quantised products alone, one thread (its header).
build/opt/bench/gemm_q: bench/gemm_q.c build/opt/libneuromap.a
	@mkdir -p $(@D)
	$(CC) $(BASE) $(OPT_FLAGS) $< build/opt/libneuromap.a -o $@ $(LIBS)

# ---- python: the package python/neuromap over build/opt/libneuromap.so ------
# PYTHONPATH=python python3 -c "import neuromap" from here, or pip install ./python
# (README, "From Python"); the package finds the library through NEUROMAP_LIB,
# beside itself, or here in build/opt (the newer of those two).
python: build/opt/libneuromap.so
	cp build/opt/libneuromap.so python/neuromap/libneuromap.so

# ---- tests ------------------------------------------------------------------
test: build/opt/all build/asan/all build/nox86/all neuromap
	@tests/run.sh build/opt build/asan build/nox86:c

test-opt: build/opt/all neuromap
	@tests/run.sh build/opt

test-asan: build/asan/all
	@tests/run.sh build/asan

# ---- fuzzing: clang + libFuzzer (see fuzz/run.sh, docs/RELIABILITY.md) -----
# make fuzz [FUZZ_SECONDS=600]: each target in turn, seeded from ../shared;
# make fuzz-smoke: each target over tests/fuzz-regressions/ (also in make test).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS    = -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_TARGETS  = $(patsubst fuzz/%.c,build/fuzz/%,$(wildcard fuzz/fuzz_*.c))
build/fuzz/%: CC = $(FUZZ_CC)
$(eval $(call mode,fuzz,$(FUZZ_FLAGS)))
build/fuzz/fuzz_%: fuzz/fuzz_%.c $(patsubst src/%.c,build/fuzz/%.o,$(LIB_SRC))
	$(FUZZ_CC) $(BASE) $(FUZZ_FLAGS) -fsanitize=fuzzer -Ifuzz $< $(filter %.o,$^) -o $@ $(LIBS)
fuzz-build: $(FUZZ_TARGETS)
fuzz: fuzz-build
	fuzz/run.sh campaign $(FUZZ_SECONDS) $(notdir $(FUZZ_TARGETS))
fuzz-smoke: fuzz-build
	fuzz/run.sh smoke 60 $(notdir $(FUZZ_TARGETS))

clean:
	rm -rf build neuromap

-include $(shell find build -name '*.d' 2>/dev/null)
