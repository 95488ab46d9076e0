# netns/: the benchmark runner (the library itself is built by the top Makefile from netns/*.c).
BENCH_BINS += $(BUILD)/bench/bench-netns

$(BUILD)/bench/bench-netns: tools/bench/bench_netns.c tools/bench/stats.h \
		$(BUILD)/lib/libem_netns.a $(BUILD)/lib/libem_common.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(BUILD)/lib/libem_netns.a \
		$(BUILD)/lib/libem_common.a -lnl-route-3 -lnl-3 -lpthread
