/* runtime/execstub.h — the sealed copy of the exec stub (see runtime/execstub/stub.c for why the
 * container's program is never executed by ember's own binary). */
#ifndef EMBER_RUNTIME_EXECSTUB_H
#define EMBER_RUNTIME_EXECSTUB_H

struct em_err;

/* A close-on-exec memfd holding the stub, sealed against every change; execute it with
 * execveat(fd, "", argv, envp, AT_EMPTY_PATH). */
int em_execstub_memfd(struct em_err *err);

#endif
