# cgroups/: the library is built by the top-level Makefile (libem_cgroups.a from cgroups/*.c).
# Here: the pure-cgroup-v2 run of the cgroups tests in a VM (tools/vm/), added to `make test`,
# and the cgroups benchmark, added to `make bench`.

# test-cgroup2: boot Debian's kernel with cgroup_no_v1=all under qemu (TCG) and run every
# runner areas put in VM_TEST_BINS inside (the cgroups tests; bpf adds its own to prove the
# billing on 6.1); fails if any test fails in the VM.
VM_TEST_BINS += $(BUILD)/tests/test-cgroups
VM_EXTRA     += $(BUILD)/ember:/bin/ember
TEST_EXTRA   += test-cgroup2
.PHONY: test-cgroup2
test-cgroup2: check-root deps $(BUILD)/vm/vmlinuz $(VM_TEST_BINS)
	$(call vm_run,cgroup2,$(VM_TEST_BINS))

# bench-cgroups: create/attach/destroy cost, placement, reads, and the CPU-share ratios
BENCH_BINS += $(BUILD)/bench/bench-cgroups

# The same benchmark on the v2 backend, in the VM. TCG emulates every instruction: absolute
# times there are not comparable with the host's; the ratios are.
.PHONY: bench-cgroup2
bench-cgroup2: check-root deps $(BUILD)/vm/vmlinuz $(BUILD)/bench/bench-cgroups
	$(call vm_run,bench-cgroup2,$(BUILD)/bench/bench-cgroups,50)

$(BUILD)/bench/bench-cgroups: tools/bench/bench_cgroups.c tools/bench/stats.h \
		$(BUILD)/lib/libem_cgroups.a $(BUILD)/lib/libem_common.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(BUILD)/lib/libem_cgroups.a \
		$(BUILD)/lib/libem_common.a
