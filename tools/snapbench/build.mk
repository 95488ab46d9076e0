# tools/snapbench/: an eager restore of a snapshot image (snapshot/fill.c) against the copy floor,
# 4K vs THP destinations, page cache vs O_DIRECT, queue depth 1/16/64 (bench_snapshot.c), added to
# `make bench`. EMBER_BENCH_SNAP_MB (default 256) and EMBER_BENCH_SNAP_ROUNDS (default 5).
BENCH_BINS += $(BUILD)/bench/bench-snapshot

$(BUILD)/bench/bench-snapshot: tools/snapbench/bench_snapshot.c tools/bench/stats.h snapshot/fill.h \
		snapshot/image.h snapshot/lazy.h $(BUILD)/lib/libem_snapshot.a $(BUILD)/lib/libem_common.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $< \
		$(BUILD)/lib/libem_snapshot.a $(BUILD)/lib/libem_common.a -luring -lpthread
