/* runtime/execstub.c — see execstub.h. */
#include "runtime/execstub.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "execstub_elf.h" /* generated: em_execstub_elf[] (build/gen/) */

int em_execstub_memfd(struct em_err *err)
{
	cleanup_close int fd = memfd_create("ember-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t off = 0;

	if (fd < 0)
		return em_err_set(err, errno, "memfd_create for the exec stub");
	while (off < sizeof(em_execstub_elf)) {
		ssize_t w = write(fd, em_execstub_elf + off, sizeof(em_execstub_elf) - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return em_err_set(err, errno, "write the exec stub");
		}
		off += (size_t)w;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		return em_err_set(err, errno, "seal the exec stub");
	return take_fd(&fd);
}
