# cgroups/: the library is built by the top-level Makefile (libem_cgroups.a from cgroups/*.c).
# Here: the pure-cgroup-v2 run of the cgroups tests in a VM (tools/vm/), added to `make test`,
# and the cgroups benchmark, added to `make bench`.

# test-cgroup2: boot Debian's kernel with cgroup_no_v1=all under qemu (TCG) and run
# build/tests/test-cgroups inside; fails if any test fails in the VM.
VM_TEST_BINS += $(BUILD)/tests/test-cgroups
VM_EXTRA     += $(BUILD)/ember:/bin/ember
TEST_EXTRA   += test-cgroup2
.PHONY: test-cgroup2
test-cgroup2: check-root deps $(BUILD)/vm/vmlinuz $(BUILD)/tests/test-cgroups
	$(call vm_run,cgroup2,$(BUILD)/tests/test-cgroups)

# bench-cgroups: create/attach/destroy cost, placement, reads, and the CPU-share ratios
BENCH_BINS += $(BUILD)/bench/bench-cgroups

$(BUILD)/bench/bench-cgroups: tools/bench/bench_cgroups.c tools/bench/stats.h \
		$(BUILD)/lib/libem_cgroups.a $(BUILD)/lib/libem_common.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(BUILD)/lib/libem_cgroups.a \
		$(BUILD)/lib/libem_common.a
