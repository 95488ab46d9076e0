# sdk/: the C SDK for functions (libember_fn.a: libc only, built with the project CFLAGS) and the
# tests of both SDKs (tests/sdk/ -> build/tests/test-sdk). The Python SDK is one file,
# sdk/python/ember_fn.py, copied into the Python bundles by examples/build.mk.
EMBER_FN_LIB := $(BUILD)/lib/libember_fn.a

$(EMBER_FN_LIB): $(BUILD)/obj/sdk/c/ember_fn.o $(BUILD)/obj/sdk/c/fn_json.o \
		$(BUILD)/obj/sdk/c/ember_zygote.o $(BUILD)/obj/sdk/c/ember_snap.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The test runner drives the example binaries (built bundles) and the Python SDK from the source
# tree, whose location it is told at compile time.
TEST_LDADD_sdk := $(EMBER_FN_LIB)
$(BUILD)/tests/test-sdk: $(EMBER_FN_LIB) | examples
$(BUILD)/obj/tests/sdk/%.o: CFLAGS += -DEMBER_SRCDIR='"$(CURDIR)"'

# The zygote fork core as a shared object for the Python SDK (ctypes): copied into Python bundles
# next to ember_fn.py.
EMBER_ZYGOTE_SO := $(BUILD)/lib/libember_zygote.so
all: $(EMBER_ZYGOTE_SO)
# It holds the snapshot handler too (ember_snap.c), which ember_zygote_serve calls.
$(EMBER_ZYGOTE_SO): sdk/c/ember_zygote.c sdk/c/ember_zygote.h sdk/c/ember_snap.c sdk/c/ember_snap.h \
		sdk/c/ember_proto.h sdk/c/ember_wire.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@ (shared)")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -fPIC -shared -o $@ sdk/c/ember_zygote.c \
		sdk/c/ember_snap.c
