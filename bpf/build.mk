# bpf/build.mk — BPF billing: vmlinux.h -> billing.bpf.o -> billing.skel.h, and bench-bpf.
#
# vmlinux.h is generated from the running kernel's BTF, not pinned in the tree. The programs use
# CO-RE (every kernel struct access is relocated at load time against the target kernel's BTF),
# so the header only has to *declare* the types; whichever kernel it was dumped from, the object
# loads on any kernel with BTF whose fields we read exist. We only read long-stable fields
# (task_struct.cgroups, css_set.dfl_cgrp, cgroup.kn, kernfs_node.id — all present and of the same
# meaning since 5.5), so an object built here on 6.18 loads on Debian 12's 6.1. Generating keeps
# the repository free of a 3 MB machine-specific file and follows the build host's kernel when it
# changes; a build host without /sys/kernel/btf/vmlinux can set VMLINUX_BTF to a BTF file (for
# example one extracted from a Debian linux-image package) or drop a vmlinux.h in build/gen/.
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPFTOOL     ?= bpftool
BPF_CFLAGS  := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -I. -I$(BUILD)/gen

$(BUILD)/gen/vmlinux.h:
	@mkdir -p $(@D)
	@$(if $(Q),echo "  GEN     $@")
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/%.bpf.o: bpf/%.bpf.c bpf/%.h $(BUILD)/gen/vmlinux.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  BPF     $@")
	$(Q)$(CLANG) $(BPF_CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.skel.h: $(BUILD)/gen/%.bpf.o
	@$(if $(Q),echo "  SKEL    $@")
	$(Q)$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@

# Keep the object (make would delete it as an intermediate): it is what bpftool/veristat inspect.
.PRECIOUS: $(BUILD)/gen/%.bpf.o

# The loader includes the generated skeleton: make that ordering explicit (the .d files only know
# about it after the first successful compile).
$(BUILD)/obj/bpf/billing.o: $(BUILD)/gen/billing.skel.h

BENCH_BINS += $(BUILD)/bench/bench-bpf

$(BUILD)/bench/bench-bpf: tools/bench/bench_bpf.c tools/bench/stats.h $(BUILD)/lib/libem_bpf.a \
			  $(BUILD)/lib/libem_common.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(BUILD)/lib/libem_bpf.a $(BUILD)/lib/libem_common.a $(SYSLIBS)

.PHONY: bench-bpf
bench-bpf: check-root $(BUILD)/bench/bench-bpf
	$(Q)$(BUILD)/bench/bench-bpf

# Debian 12's 6.1 kernel, pure cgroup v2: the same runner in the test VM of tools/vm (qemu, TCG).
# The figures there are slower (no KVM) but the program must load, attach and count the same.
# test-bpf also runs in the shared VM run (VM_TEST_BINS, read by the cgroups area's test-cgroup2
# of `make test`, and by vm-test); test-bpf-vm boots a VM for it alone.
VM_TEST_BINS += $(BUILD)/tests/test-bpf
VM_EXTRA += $(BUILD)/tools/emtest:/bin/emtest
.PHONY: test-bpf-vm
test-bpf-vm: check-root deps $(BUILD)/vm/vmlinuz $(BUILD)/tests/test-bpf $(BUILD)/tools/emtest
	$(call vm_run,bpf,$(BUILD)/tests/test-bpf)
