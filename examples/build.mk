# examples/: each example function becomes an OCI bundle, $(BUILD)/examples/NAME/{config.json,rootfs}
# (tools/examples/mkbundle.py; examples/README.md says what each does). `make` builds them all.
# C examples are static binaries linked against the C SDK (built by sdk/build.mk); Python examples
# are their handler files plus sdk/python/ember_fn.py, run by the host's /usr/bin/python3.
EXAMPLES_C  := hello-c init-heavy-c spin probe
EXAMPLES_PY := hello-python init-heavy-python probe-python
EXAMPLE_BUNDLES := $(patsubst %,$(BUILD)/examples/%/config.json,$(EXAMPLES_C) $(EXAMPLES_PY))
MKBUNDLE := tools/examples/mkbundle.py
# The ember whose `spec` each config.json starts from.
EXAMPLES_EMBER ?= $(BUILD)/ember

.PHONY: examples
all: examples
examples: $(EXAMPLE_BUNDLES)

# $(1): the example's name; its sources are examples/$(1)/*.c
define example_c
$(BUILD)/obj/examples/$(1): $(wildcard examples/$(1)/*.c) sdk/c/ember_fn.h $(BUILD)/lib/libember_fn.a
	@mkdir -p $$(@D)
	@$$(if $$(Q),echo "  LD      $$@ (static)")
	$$(Q)$$(CC) $$(filter-out -MMD -MP,$$(CFLAGS)) -Isdk/c $$(LDFLAGS) -static -o $$@ \
		$$(filter %.c,$$^) $(BUILD)/lib/libember_fn.a

$(BUILD)/examples/$(1)/config.json: $(BUILD)/obj/examples/$(1) $(MKBUNDLE) | $(EXAMPLES_EMBER)
	@$$(if $$(Q),echo "  BUNDLE  $$(@D)")
	$$(Q)$(MKBUNDLE) --ember $(EXAMPLES_EMBER) --c $$< $$(@D)
endef

# $(1): the example's name; its handler is handler.handler in examples/$(1)/handler.py
define example_py
$(BUILD)/examples/$(1)/config.json: $(wildcard examples/$(1)/*.py) sdk/python/ember_fn.py $(MKBUNDLE) \
		$(BUILD)/lib/libember_zygote.so | $(EXAMPLES_EMBER)
	@$$(if $$(Q),echo "  BUNDLE  $$(@D)")
	$$(Q)$(MKBUNDLE) --ember $(EXAMPLES_EMBER) --python sdk/python/ember_fn.py --zygote-lib $(BUILD)/lib/libember_zygote.so \
		--handler handler.handler \
		$$(@D) $(wildcard examples/$(1)/*.py)
endef

$(foreach e,$(EXAMPLES_C),$(eval $(call example_c,$(e))))
$(foreach e,$(EXAMPLES_PY),$(eval $(call example_py,$(e))))
