# tools/forkbench/: what a zygote fork costs as a function of the template's resident memory, with
# 4 KiB pages and with transparent huge pages (bench_fork.c), added to `make bench`. Needs nothing
# of ember's libraries: it times clone3 and copy-on-write as the zygote (sdk/c/ember_zygote.c)
# meets them.
BENCH_BINS += $(BUILD)/bench/bench-fork

$(BUILD)/bench/bench-fork: tools/forkbench/bench_fork.c tools/bench/stats.h common/cleanup.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $<
