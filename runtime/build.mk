# The ember binary: a thin CLI (runtime/cli/) over the area libraries.
EMBER_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard runtime/cli/*.c))

# Every `ember run` pays the dynamic loader: on this VM (page faults 10-20x bare metal) loading
# ten shared objects cost ~3 ms of a ~5 ms start. The libraries ember's CLI uses are linked
# statically, glibc too (-static: no loader at all, no PIE relocation; the NSS lookups libnl
# could make are never reached by ember, so the linker's getaddrinfo warnings are harmless).
EMBER_LDLIBS := -static -Wl,--no-warnings -ljansson -lseccomp -lnl-route-3 -lnl-3 -lbpf -lelf \
                -lz -luring -lsqlite3 -lmicrohttpd -lpthread -lm

$(BUILD)/ember: $(EMBER_OBJS) $(LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(EMBER_OBJS) $(LIBS) $(EMBER_LDLIBS)

# The exec stub: static, no libc, embedded into libem_runtime as a byte array (see stub.c: why).
$(BUILD)/gen/execstub: runtime/execstub/stub.c runtime/sync.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@ (nostdlib)")
	$(Q)$(CC) -std=gnu11 -Os -Wall -Wextra -Werror -I. -nostdlib -static -fno-stack-protector \
		-fno-asynchronous-unwind-tables -fno-pie -no-pie -Wl,--build-id=none -o $@ $<
	$(Q)strip $@

$(BUILD)/gen/execstub_elf.h: $(BUILD)/gen/execstub
	$(Q){ echo "/* generated from runtime/execstub/stub.c */"; \
	  echo "static const unsigned char em_execstub_elf[] = {"; \
	  od -An -v -tx1 $< | sed 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo "};"; } > $@

$(BUILD)/obj/runtime/execstub.o: $(BUILD)/gen/execstub_elf.h
