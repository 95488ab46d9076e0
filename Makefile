# ember — plain Makefile; everything it builds lands under build/.
# Areas (common cgroups netns bpf snapshot runtime) each become a static library
# build/lib/libem_<area>.a from <area>/*.c; an area's build.mk adds its own rules
# (BPF skeletons, the ember binary, ...). Tests: tests/<area>/*.c -> build/tests/test-<area>.
# `make V=1` shows the commands.

BUILD   ?= build
CC      ?= gcc
CLANG   ?= clang
PKGS_CFLAGS := $(shell pkg-config --cflags libnl-3.0 libnl-route-3.0 2>/dev/null || echo -I/usr/include/libnl3)

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -I$(BUILD)/gen $(PKGS_CFLAGS) \
           -fno-strict-aliasing -fstack-protector-strong -MMD -MP \
           -Wno-format-truncation # messages are bounded on purpose; a cut message is fine
LDFLAGS ?=
# The system libraries every ember binary may need. Order matters for static archives.
SYSLIBS := -ljansson -lseccomp -lnl-route-3 -lnl-3 -lbpf -lelf -lz -luring -lmicrohttpd \
           -lsqlite3 -lpthread -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

.DELETE_ON_ERROR:
.SUFFIXES:
.PHONY: all deps test bench demo clean rootfs check-root

AREAS := common cgroups netns bpf snapshot runtime
# Library order for the linker: dependents first.
LIB_ORDER := runtime snapshot bpf netns cgroups common

# An area may keep a concept in a subfolder (runtime/host/: the function host); its files join the
# area's library.
AREA_SUBDIRS_runtime := runtime/host
area_srcs = $(filter-out %.bpf.c,$(wildcard $(1)/*.c $(addsuffix /*.c,$(AREA_SUBDIRS_$(1)))))
area_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(call area_srcs,$(1)))
LIBS := $(foreach a,$(LIB_ORDER),$(if $(call area_srcs,$(a)),$(BUILD)/lib/libem_$(a).a))

all: deps $(BUILD)/ember rootfs

# --- dependencies: install missing Debian packages (a fresh Debian 12 needs nothing by hand)
deps:
	$(Q)tools/deps.sh

# --- objects and libraries
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

define area_lib
$(BUILD)/lib/libem_$(1).a: $(call area_objs,$(1))
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  AR      $$@")
	$$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach a,$(AREAS),$(if $(call area_srcs,$(a)),$(eval $(call area_lib,$(a)))))

# --- tests: one Criterion runner per area
TEST_AREAS := $(patsubst tests/%/,%,$(sort $(dir $(wildcard tests/*/*.c))))
TEST_BINS  := $(foreach a,$(TEST_AREAS),$(BUILD)/tests/test-$(a))

# A test runner links only its own area and what that area depends on (see DESIGN.md), so a
# half-written file in one area never breaks another area's tests.
TEST_DEPS_common  := common
TEST_DEPS_cgroups := cgroups common
TEST_DEPS_netns   := netns common
TEST_DEPS_bpf     := bpf cgroups common
TEST_DEPS_snapshot:= snapshot common
TEST_DEPS_sdk     := cgroups common
test_libs = $(foreach a,$(or $(TEST_DEPS_$(1)),$(LIB_ORDER)),$(if $(call area_srcs,$(a)),$(BUILD)/lib/libem_$(a).a))

define test_bin
$(BUILD)/tests/test-$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/$(1)/*.c)) $(call test_libs,$(1))
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(call test_libs,$(1)) $$(TEST_LDADD_$(1)) -lcriterion $$(SYSLIBS)
endef
$(foreach a,$(TEST_AREAS),$(eval $(call test_bin,$(a))))

include $(wildcard */build.mk tools/*/build.mk)

# Criterion runs each area's tests; areas with tests that share kernel state run one job at a time.
CRITERION_FLAGS ?= --jobs 1
test: check-root deps all $(TEST_BINS) $(TEST_EXTRA)
	$(Q)tools/run-tests.sh $(TEST_BINS)

# `make test-<area>` builds and runs one area's runner, e.g. `make test-cgroups`.
$(foreach a,$(TEST_AREAS),$(eval test-$(a): check-root deps all $(BUILD)/tests/test-$(a) ; $$(Q)tools/run-tests.sh $(BUILD)/tests/test-$(a)))

# Benchmarks: each area's build.mk adds its runners to BENCH_BINS; they print report lines in the
# format of tools/bench/stats.h. Figures come from one run, side by side with their peers.
bench: check-root deps all $(BENCH_BINS)
	$(Q)for b in $(BENCH_BINS); do echo "== $$(basename $$b)"; $$b || exit 1; done

# The demo: the function host end to end through `ember fn` (deploy, cold and warm invocations,
# records, logs), its start latencies next to crun/runc (bench-host, few rounds), and a bundle
# through the OCI runtime CLI. Leaves nothing behind.
demo: check-root deps all examples $(filter %/bench-host,$(BENCH_BINS))
	$(Q)tools/demo.sh

check-root:
	@[ "$$(id -u)" = 0 ] || { echo "ember's tests and demo need root (namespaces, cgroups, mounts)" >&2; exit 1; }

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
