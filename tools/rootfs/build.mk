# The test rootfs (busybox + emtest) under build/rootfs, used by tests and benchmarks.
EMTEST := $(BUILD)/tools/emtest

$(EMTEST): tools/rootfs/emtest.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@ (static)")
	$(Q)$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -o $@ $<

$(BUILD)/rootfs/.stamp: tools/rootfs/mkrootfs.sh $(EMTEST)
	@$(if $(Q),echo "  ROOTFS  $(BUILD)/rootfs")
	$(Q)tools/rootfs/mkrootfs.sh $(BUILD)/rootfs $(EMTEST)
	$(Q)touch $@

rootfs: $(BUILD)/rootfs/.stamp
