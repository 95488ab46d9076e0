/* snapshot/identity.c — what an image is tied to: the executable's GNU build id and the running
 * kernel's release. A restore maps regions at the addresses one binary laid out on one kernel
 * (the vDSO, the syscall ABI of saved state): another binary or kernel must be refused, not
 * guessed at. The build id is read from the ELF program headers' PT_NOTE segments, which every
 * linked executable keeps loaded (section headers may be stripped). */
#include "snapshot/image.h"
#include "common/cleanup.h"
#include "common/err.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define NOTE_MAX (64 * 1024) /* a PT_NOTE segment larger than this is not one a linker made */

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
	ssize_t n = pread(fd, buf, len, (off_t)off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -ENODATA;
}

/* Walk one note segment; 1 if it held the build id. */
static int find_build_id(const char *notes, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	size_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr n;

		memcpy(&n, notes + off, sizeof(n));
		off += sizeof(n);
		size_t name = ((size_t)n.n_namesz + 3) & ~(size_t)3;
		size_t desc = ((size_t)n.n_descsz + 3) & ~(size_t)3;
		if (name > len - off || desc > len - off - name)
			return 0;
		if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 && !memcmp(notes + off, "GNU", 4)) {
			if (n.n_descsz > cap || n.n_descsz == 0)
				return -EOVERFLOW;
			memcpy(out, notes + off + name, n.n_descsz);
			*out_len = n.n_descsz;
			return 1;
		}
		off += name + desc;
	}
	return 0;
}

int em_snap_build_id(const char *elf_path, uint8_t *out, size_t cap, size_t *len,
		     struct em_err *err)
{
	cleanup_close int fd = open(elf_path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	int ret;

	if (fd < 0)
		return em_err_set(err, errno, "open %s", elf_path);
	ret = read_at(fd, &eh, sizeof(eh), 0);
	if (ret < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG))
		return em_err_msg(err, ENOEXEC, "%s: not an ELF file", elf_path);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_phentsize != sizeof(Elf64_Phdr))
		return em_err_msg(err, ENOEXEC, "%s: not a 64-bit little-endian ELF file", elf_path);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		ret = read_at(fd, &ph, sizeof(ph), eh.e_phoff + (uint64_t)i * sizeof(ph));
		if (ret < 0)
			return em_err_set(err, ret, "%s: read program header %u", elf_path, i);
		if (ph.p_type != PT_NOTE || !ph.p_filesz || ph.p_filesz > NOTE_MAX)
			continue;
		cleanup_free char *notes = malloc(ph.p_filesz);
		if (!notes)
			return em_err_set(err, ENOMEM, "%s: notes", elf_path);
		ret = read_at(fd, notes, ph.p_filesz, ph.p_offset);
		if (ret < 0)
			return em_err_set(err, ret, "%s: read notes at %#lx", elf_path,
					  (unsigned long)ph.p_offset);
		ret = find_build_id(notes, ph.p_filesz, out, cap, len);
		if (ret < 0)
			return em_err_msg(err, EOVERFLOW, "%s: build id longer than %zu bytes", elf_path,
					  cap);
		if (ret)
			return 0;
	}
	return em_err_msg(err, ENOENT, "%s: no GNU build id note (link with --build-id)", elf_path);
}

int em_snap_kernel_release(char *buf, size_t cap, struct em_err *err)
{
	struct utsname u;

	if (uname(&u) < 0)
		return em_err_set(err, errno, "uname");
	if (strlen(u.release) >= cap)
		return em_err_msg(err, ENAMETOOLONG, "kernel release \"%s\" longer than %zu bytes",
				  u.release, cap - 1);
	strcpy(buf, u.release);
	return 0;
}
