# tools/bench/: `ember run` against crun and runc (bench_run.c; the peers in peers.c, shared with
# tools/hostbench/), added to `make bench`.
# Needs build/ember and build/rootfs at run time (found next to the binary: build/bench/..).
BENCH_BINS += $(BUILD)/bench/bench-run

BENCHRUN_SRCS := tools/bench/bench_run.c tools/bench/peers.c

$(BUILD)/bench/bench-run: $(BENCHRUN_SRCS) tools/bench/peers.h tools/bench/stats.h \
		$(BUILD)/lib/libem_cgroups.a $(BUILD)/lib/libem_common.a | $(BUILD)/ember rootfs
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $(BENCHRUN_SRCS) \
		$(BUILD)/lib/libem_cgroups.a $(BUILD)/lib/libem_common.a -ljansson
