/* snapshot/restorer.c — see restorer.h: the embedded ember-restore as a sealed memfd. */
#include "snapshot/restorer.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ember_restore_elf.h" /* generated: em_restore_elf[] (build/gen/, snapshot/build.mk) */

int em_snap_restorer_memfd(struct em_err *err)
{
	cleanup_close int fd = memfd_create("ember-restore", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t off = 0;

	if (fd < 0)
		return em_err_set(err, errno, "memfd_create for ember-restore");
	while (off < EM_RESTORE_ELF_SIZE) {
		ssize_t w = write(fd, em_restore_elf + off, EM_RESTORE_ELF_SIZE - off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return em_err_set(err, errno, "write ember-restore into its memfd");
		}
		off += (size_t)w;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		return em_err_set(err, errno, "seal ember-restore's memfd");
	return take_fd(&fd);
}
