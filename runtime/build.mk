# The ember binary: a thin CLI (runtime/cli/) over the area libraries.
EMBER_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard runtime/cli/*.c))

$(BUILD)/ember: $(EMBER_OBJS) $(LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(EMBER_OBJS) $(LIBS) $(SYSLIBS)
