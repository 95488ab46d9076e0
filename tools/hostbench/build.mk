# tools/hostbench/: the function host (`ember serve`) end to end, cold and warm, next to
# `crun run` / `runc run` of the same bundle (bench_host.c; the peers in tools/bench/peers.c,
# shared with bench-run), added to `make bench`. Needs build/ember and the example bundles at run
# time (found next to the binary: build/bench/..). Links the API client from libem_runtime and the
# cgroup parent's cleanup from libem_cgroups.
BENCH_BINS += $(BUILD)/bench/bench-host

HOSTBENCH_SRCS := tools/hostbench/bench_host.c tools/bench/peers.c

$(BUILD)/bench/bench-host: $(HOSTBENCH_SRCS) tools/bench/peers.h tools/bench/stats.h \
		$(BUILD)/lib/libem_runtime.a $(BUILD)/lib/libem_cgroups.a $(BUILD)/lib/libem_common.a \
		| $(BUILD)/ember examples
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $(HOSTBENCH_SRCS) \
		$(BUILD)/lib/libem_runtime.a $(BUILD)/lib/libem_cgroups.a $(BUILD)/lib/libem_common.a \
		-ljansson -lpthread
