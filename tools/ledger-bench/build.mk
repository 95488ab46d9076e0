# tools/ledger-bench/: the cost of the host's ledger on an invocation's path (bench_ledger.c),
# added to `make bench`. Links the ledger's object alone, not libem_runtime, so it builds while
# other files of runtime/host/ are being written.
BENCH_BINS += $(BUILD)/bench/bench-ledger

$(BUILD)/bench/bench-ledger: tools/ledger-bench/bench_ledger.c tools/bench/stats.h \
		$(BUILD)/obj/runtime/host/ledger.o $(BUILD)/lib/libem_common.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $< \
		$(BUILD)/obj/runtime/host/ledger.o $(BUILD)/lib/libem_common.a -lsqlite3 -ljansson \
		-lpthread -lm
