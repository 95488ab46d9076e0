# snapshot/: ember-restore, the restorer (snapshot/restore/, see snapshot/restorer.h), embedded into
# libem_snapshot as a byte array; and the test templates tests/snapshot needs.

# The restorer links at a fixed high address, static and not PIE, so it never sits where a
# template had memory (its range is reserved: restore.h). Built without the stack protector: its
# last step runs with the template's thread pointer (jump.c).
RESTORE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard snapshot/restore/*.c))
$(RESTORE_OBJS): CFLAGS += -fno-stack-protector
# The library's objects minus restorer.o (which embeds the restorer: it cannot link itself).
RESTORE_LIB := $(BUILD)/gen/libem_snapshot_restore.a
$(RESTORE_LIB): $(filter-out $(BUILD)/obj/snapshot/restorer.o,$(call area_objs,snapshot))
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

# glibc's static start files: crt1.o (its start code loads main's address through the GOT, fine at
# any address with --no-relax) but crtbeginS.o/crtendS.o, the PIC ones: crtbeginT.o holds 32-bit
# absolute relocations, which cannot reach 0x3e0000000000. weak.c explains the rest.
crtfile = $(shell $(CC) -print-file-name=$(1))
$(BUILD)/gen/ember-restore: $(RESTORE_OBJS) $(RESTORE_LIB) $(BUILD)/lib/libem_common.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@ (static, at 0x3e0000000000)")
	$(Q)$(CC) -static -no-pie -nostartfiles -Wl,-Ttext-segment=0x3e0000000000 -Wl,--no-relax \
		-Wl,--build-id -o $@ $(call crtfile,crt1.o) $(call crtfile,crti.o) \
		$(call crtfile,crtbeginS.o) $(RESTORE_OBJS) $(RESTORE_LIB) $(BUILD)/lib/libem_common.a \
		-luring -Wl,--start-group -lgcc -lgcc_eh -lc -Wl,--end-group \
		$(call crtfile,crtendS.o) $(call crtfile,crtn.o)
	$(Q)strip $@

# .incbin rather than a C array of a ~900 KB program: the assembler copies the bytes (same
# generated-header pattern as runtime/build.mk's exec stub).
$(BUILD)/gen/ember_restore_elf.h: $(BUILD)/gen/ember-restore
	$(Q)printf '%s\n' '/* generated: embeds $< */' \
	  'extern const unsigned char em_restore_elf[], em_restore_elf_end[];' \
	  '__asm__(".section .rodata; .balign 16; .globl em_restore_elf; em_restore_elf:;"' \
	  '        ".incbin \"$(abspath $<)\"; em_restore_elf_end:; .previous");' \
	  '#define EM_RESTORE_ELF_SIZE ((size_t)(em_restore_elf_end - em_restore_elf))' > $@

$(BUILD)/obj/snapshot/restorer.o: $(BUILD)/gen/ember_restore_elf.h

# Test templates (tests/snapshot/test_restore.c): the same program static and dynamic (PIE).
SNAP_TARGET_SRCS := tests/snapshot/target/target.c sdk/c/ember_snap.c
$(BUILD)/tests/snapshot-target: $(SNAP_TARGET_SRCS) sdk/c/ember_snap.h sdk/c/ember_proto.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@ (static)")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -static -o $@ $(SNAP_TARGET_SRCS)
$(BUILD)/tests/snapshot-target-dyn: $(SNAP_TARGET_SRCS) sdk/c/ember_snap.h sdk/c/ember_proto.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@ (PIE)")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -fPIE -pie -o $@ $(SNAP_TARGET_SRCS)
$(BUILD)/tests/test-snapshot: $(BUILD)/tests/snapshot-target $(BUILD)/tests/snapshot-target-dyn
$(BUILD)/obj/tests/snapshot/%.o: CFLAGS += -DSNAP_TARGET_DIR='"$(abspath $(BUILD))/tests"'
