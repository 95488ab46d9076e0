# The pure-cgroup-v2 test VM: Debian's kernel (taken out of its package, never installed here)
# booted under qemu with cgroup_no_v1=all and an initramfs that runs test binaries.
# Areas add their Criterion runners to VM_TEST_BINS (and files to VM_EXTRA, "host:/guest ...");
# `make vm-test` boots one VM that runs them all; test-cgroup2 (cgroups/build.mk) is the cgroups one.
VM_DIR       := $(BUILD)/vm
VM_KERNEL    := $(VM_DIR)/vmlinuz
VM_TEST_BINS ?=
VM_TEST_ARGS ?= --jobs 1 --verbose

$(VM_KERNEL):
	$(Q)tools/vm/fetch-kernel.sh $(VM_DIR)

# $(call vm_run,name,binaries[,args]): build the initramfs for those binaries and boot it; each
# binary runs with args (default $(VM_TEST_ARGS)); the log lands in $(VM_DIR)/name.log
define vm_run
	@mkdir -p $(VM_DIR)
	@$(if $(Q),echo "  VM      initramfs $(VM_DIR)/$(1).cpio.gz: $(notdir $(2))")
	$(Q)VM_EXTRA="$(VM_EXTRA)" tools/vm/mkinitramfs.sh $(VM_DIR)/$(1).cpio.gz $(2)
	$(Q)tools/vm/run.sh $(VM_KERNEL) $(VM_DIR)/$(1).cpio.gz $(VM_DIR)/$(1).log "$(or $(3),$(VM_TEST_ARGS))"
endef

.PHONY: vm-test
vm-test: check-root deps $(VM_KERNEL) $(VM_TEST_BINS)
	$(call vm_run,vm-test,$(VM_TEST_BINS))
