/* snapshot/image.h — the snapshot image of a zygote template (snapshot/FORMAT.md): the on-disk
 * structs, a writer that streams a template's regions into an image, and a reader that verifies an
 * image and tells a restorer, page by page, where its bytes are.
 *
 * The on-disk structs are the API's structs: fixed-width little-endian fields, no pointers, sizes
 * pinned by static asserts, so a restorer built without libc can walk a mapped or read image with
 * the same header. ember runs on x86-64 only, which is little-endian: fields are used as is. */
#ifndef EMBER_SNAPSHOT_IMAGE_H
#define EMBER_SNAPSHOT_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct em_err;

#define EM_SNAP_MAGIC "EMBERSNP"        /* 8 bytes, no NUL */
#define EM_SNAP_VERSION 1
#define EM_SNAP_PAGE_SIZE 4096u         /* every data offset and size is a multiple of this */
#define EM_SNAP_CTX_MAX 1024            /* register context: opaque bytes the dumper defines */
#define EM_SNAP_AUXV_MAX 64             /* u64 words of auxv (x86-64's is 52 at most) */
#define EM_SNAP_BUILD_ID_MAX 64
#define EM_SNAP_RELEASE_MAX 80          /* uname's release is 65 bytes */
#define EM_SNAP_NSIG 64                 /* sigaction entries: signals 1..64 */
#define EM_SNAP_NONE 0xffffffffu        /* "no file", "no string" in u32 index fields */

/* At offset 0; the first 4096 bytes of the file are reserved for it (zero after header_size). */
struct em_snap_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;   /* sizeof(struct em_snap_header) */
	uint32_t page_size;     /* 4096 */
	uint32_t flags;         /* 0 in version 1 */
	uint64_t file_size;     /* the whole image: meta_off + meta_size */
	uint64_t data_off;      /* 4096: page data starts after the header's page */
	uint64_t data_size;     /* 4096 * stored pages */
	uint64_t meta_off;      /* data_off + data_size: metadata follows the data */
	uint64_t meta_size;
	uint32_t meta_crc;      /* CRC32C of the metadata's meta_size bytes */
	uint32_t header_crc;    /* CRC32C of header_size bytes with this field zero */
	uint64_t reserved[3];   /* zero */
};

/* A table in the metadata: count entries of entsize bytes at off (from the metadata's start,
 * 8-aligned). entsize must equal the struct's size in version 1. */
struct em_snap_table {
	uint64_t off;
	uint32_t count;
	uint32_t entsize;
};

/* What prctl(PR_SET_MM_MAP) takes (struct prctl_mm_map, minus exe_fd) */
struct em_snap_mm {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint32_t auxv_size;     /* bytes of auxv used, a multiple of 16 (type, value pairs) */
	uint32_t reserved;
	uint64_t auxv[EM_SNAP_AUXV_MAX];
};

/* The metadata's fixed part, at meta_off; tables follow it. */
struct em_snap_meta {
	uint32_t arch;          /* ELF e_machine of the process: 62 (EM_X86_64) */
	uint32_t build_id_len;
	uint8_t build_id[EM_SNAP_BUILD_ID_MAX];  /* NT_GNU_BUILD_ID of the executable */
	char kernel_release[EM_SNAP_RELEASE_MAX]; /* uname -r at dump time, NUL-terminated */
	uint64_t created_ns;    /* CLOCK_REALTIME at dump; informative */
	uint32_t exe_file;      /* index in files of the executable, or EM_SNAP_NONE */
	uint32_t ctx_size;      /* bytes of ctx used, <= EM_SNAP_CTX_MAX */
	uint8_t ctx[EM_SNAP_CTX_MAX];
	uint64_t fs_base;       /* the thread pointer */
	uint64_t gs_base;
	struct em_snap_mm mm;
	uint64_t sigmask;       /* blocked signals: bit n-1 is signal n */
	uint64_t reserved[4];   /* zero */
	struct em_snap_table regions, pages, files, fds, sigactions, strings;
};

/* region flags */
#define EM_SNAP_R_PRIVATE   0x1u   /* MAP_PRIVATE; without it: a read-only shared file mapping,
					* all pages absent, mapped again from the file */
#define EM_SNAP_R_ANON      0x2u   /* no file backing */
#define EM_SNAP_R_HEAP      0x4u   /* the brk heap */
#define EM_SNAP_R_STACK     0x8u   /* the main thread's stack */
#define EM_SNAP_R_GROWSDOWN 0x10u
#define EM_SNAP_R_HUGEPAGE  0x20u  /* may be backed by transparent huge pages on restore */
#define EM_SNAP_R_KNOWN     0x3fu

/* A mapping to recreate, sorted by start, never overlapping; its pages are entries
 * page_first .. page_first + (end - start) / 4096 - 1 of the page table, and its stored pages are
 * contiguous in the image from data_off, in address order. */
struct em_snap_region {
	uint64_t start, end;    /* page-aligned, start < end */
	uint64_t file_off;      /* offset of start in the backing file (0 when anonymous) */
	uint64_t data_off;      /* image offset of its first stored page */
	uint32_t prot;          /* PROT_READ | PROT_WRITE | PROT_EXEC */
	uint32_t flags;         /* EM_SNAP_R_* */
	uint32_t file;          /* index in files, or EM_SNAP_NONE */
	uint32_t name;          /* string: "[heap]", "[stack]", an anon name; or EM_SNAP_NONE */
	uint32_t page_first;
	uint32_t nr_stored, nr_zero, nr_absent;
};

#define EM_SNAP_PAGE_ABSENT 0xffffffffu   /* never touched: leave unmapped-in (fault on demand) */
#define EM_SNAP_PAGE_ZERO   0xfffffffeu   /* present and all zero: not stored */

/* One page of a region: slot k (the k-th stored page of the region, at data_off + k * 4096) with
 * the CRC32C of its 4096 bytes, or ABSENT/ZERO with crc 0. */
struct em_snap_page {
	uint32_t slot;
	uint32_t crc;
};

/* The identity of a file a region or fd maps: a restore refuses a file that changed since. */
struct em_snap_file {
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t mode;
	uint32_t path;          /* string */
	uint32_t reserved;
};

enum em_snap_fd_kind {
	EM_SNAP_FD_FILE = 1, EM_SNAP_FD_DIR, EM_SNAP_FD_CHR, EM_SNAP_FD_PIPE, EM_SNAP_FD_SOCKET,
	EM_SNAP_FD_ANON, EM_SNAP_FD_OTHER,
};

struct em_snap_fd {
	int32_t fd;
	uint32_t kind;          /* enum em_snap_fd_kind */
	uint32_t fd_flags;      /* FD_CLOEXEC */
	uint32_t status_flags;  /* O_ACCMODE, O_APPEND, O_NONBLOCK, ... as F_GETFL gives them */
	uint64_t pos;           /* file offset */
	uint32_t desc;          /* string: a path, or "pipe:[123]", "socket:[456]", "anon_inode:[eventfd]" */
	uint32_t file;          /* index in files (regular files, directories), or EM_SNAP_NONE */
};

/* The kernel's struct sigaction on x86-64 (rt_sigaction's), entry n-1 for signal n. */
struct em_snap_sigaction {
	uint64_t handler;       /* SIG_DFL 0, SIG_IGN 1, or an address */
	uint64_t flags;         /* SA_* */
	uint64_t restorer;
	uint64_t mask;
};

_Static_assert(sizeof(struct em_snap_header) == 96, "on-disk header size");
_Static_assert(sizeof(struct em_snap_meta) == 1952, "on-disk metadata size");
_Static_assert(sizeof(struct em_snap_region) == 64, "on-disk region size");
_Static_assert(sizeof(struct em_snap_page) == 8, "on-disk page size");
_Static_assert(sizeof(struct em_snap_file) == 48, "on-disk file size");
_Static_assert(sizeof(struct em_snap_fd) == 32, "on-disk fd size");
_Static_assert(sizeof(struct em_snap_sigaction) == 32, "on-disk sigaction size");

/* --- writing ------------------------------------------------------------------------------- */

struct em_snap_writer;

/* A region to store. mem holds its end - start bytes; only pages that are not absent are read
 * (reading an absent page of a live mapping would fault it in). absent is a bitmap, bit k
 * (absent[k / 64] >> (k % 64) & 1) set for page k; NULL when every page is present. Pages that
 * read all zero are recorded as ZERO, not stored. */
struct em_snap_region_spec {
	uint64_t start, end;
	uint32_t prot, flags;
	uint32_t file;          /* from em_snap_writer_add_file, or EM_SNAP_NONE */
	uint64_t file_off;
	const char *name;       /* or NULL */
	const void *mem;        /* may be NULL only if every page is absent */
	const uint64_t *absent;
};

/* Start an image at path: it is written to a temporary file beside path and renamed over path
 * by em_snap_writer_commit, so a reader never sees half an image. */
int em_snap_writer_open(const char *path, struct em_snap_writer **out, struct em_err *err);
/* The fixed metadata to fill (arch, build id, release, context, fs base, mm, sigmask); its
 * tables and exe_file are the writer's. arch defaults to x86-64, created_ns to now. */
struct em_snap_meta *em_snap_writer_meta(struct em_snap_writer *w);
/* Record a file's identity (st from stat(path) when NULL); the same file gives the same index. */
int em_snap_writer_add_file(struct em_snap_writer *w, const char *path, const struct stat *st,
			    uint32_t *index, struct em_err *err);
int em_snap_writer_set_exe(struct em_snap_writer *w, uint32_t file, struct em_err *err);
/* fd->desc is ignored: desc is the path or description. */
int em_snap_writer_add_fd(struct em_snap_writer *w, const struct em_snap_fd *fd, const char *desc,
			  struct em_err *err);
int em_snap_writer_set_sigaction(struct em_snap_writer *w, int signo,
				 const struct em_snap_sigaction *sa, struct em_err *err);
/* Regions in ascending address order; their pages are written now. */
int em_snap_writer_add_region(struct em_snap_writer *w, const struct em_snap_region_spec *r,
			      struct em_err *err);
/* The same, streamed, for regions too big for one buffer (a 300 MB heap read from another
 * process): begin with r (its mem and absent are ignored), give its pages in address order in
 * chunks (mem holds npages pages, absent the chunk's bitmap, bit k for the chunk's page k), end
 * once all are given; out (may be NULL) receives the region's entry with its counts. */
int em_snap_writer_region_begin(struct em_snap_writer *w, const struct em_snap_region_spec *r,
				struct em_err *err);
int em_snap_writer_region_pages(struct em_snap_writer *w, const void *mem, uint64_t npages,
				const uint64_t *absent, struct em_err *err);
int em_snap_writer_region_end(struct em_snap_writer *w, struct em_snap_region *out,
			      struct em_err *err);
/* Write the metadata and header, fdatasync, rename into place. The writer stays to be freed. */
int em_snap_writer_commit(struct em_snap_writer *w, struct em_err *err);
/* Free; an uncommitted image's temporary file is removed. NULL is fine. */
void em_snap_writer_free(struct em_snap_writer *w);

/* --- reading ------------------------------------------------------------------------------- */

struct em_snap_image;

/* What the caller expects of the image: NULL fields (or NULL for all) skip the check. */
struct em_snap_expect {
	const uint8_t *build_id;
	size_t build_id_len;
	const char *kernel_release;
};

/* Open and verify an image: magic, version, header checksum, sizes against the file's (truncated),
 * metadata checksum, metadata consistency (tables in range, regions sorted and disjoint, page map
 * and data offsets), then expect. Page data is not read: see em_snap_verify_data and
 * em_snap_check_page. Each refusal names the failing check (-EINVAL, -ENOEXEC for "not an
 * image", -EPROTONOSUPPORT for the version, -EBADMSG for checksums, -ESTALE for a foreign
 * image). */
int em_snap_open(const char *path, const struct em_snap_expect *expect, struct em_snap_image **out,
		 struct em_err *err);
/* The same on an open fd (read from position-independent preads; the image takes it, and closes
 * it on failure too): a restorer in a sandbox whose uid may not reopen the image by any path gets
 * it as an fd. name is for messages. */
int em_snap_open_fd(int fd, const char *name, const struct em_snap_expect *expect,
		    struct em_snap_image **out, struct em_err *err);
void em_snap_close(struct em_snap_image *img);

const struct em_snap_header *em_snap_header(const struct em_snap_image *img);
const struct em_snap_meta *em_snap_meta(const struct em_snap_image *img);
/* The path (or name) it was opened with, for messages. */
const char *em_snap_path(const struct em_snap_image *img);
/* The image's open fd (O_RDONLY, buffered); a restorer reading with O_DIRECT opens its own. */
int em_snap_fd(const struct em_snap_image *img);

uint32_t em_snap_region_count(const struct em_snap_image *img);
const struct em_snap_region *em_snap_region(const struct em_snap_image *img, uint32_t i);
const struct em_snap_page *em_snap_region_pages(const struct em_snap_image *img, uint32_t i);
uint32_t em_snap_file_count(const struct em_snap_image *img);
const struct em_snap_file *em_snap_file(const struct em_snap_image *img, uint32_t i);
uint32_t em_snap_fd_count(const struct em_snap_image *img);
const struct em_snap_fd *em_snap_fd_entry(const struct em_snap_image *img, uint32_t i);
/* signal 1..64 */
const struct em_snap_sigaction *em_snap_sigaction(const struct em_snap_image *img, int signo);
/* A string field's text; "" for EM_SNAP_NONE (offsets were checked at open). */
const char *em_snap_string(const struct em_snap_image *img, uint32_t off);

enum em_snap_page_state { EM_SNAP_ABSENT, EM_SNAP_ZERO, EM_SNAP_STORED };

/* Page `page` of region `region`: its state and, when stored, its image offset. */
enum em_snap_page_state em_snap_page_at(const struct em_snap_image *img, uint32_t region,
					uint32_t page, uint64_t *file_off);

/* A run of pages in one state; a stored run is contiguous in the image: one read fills it. */
struct em_snap_run {
	uint64_t vaddr;
	uint64_t len;           /* bytes */
	uint64_t file_off;      /* image offset of vaddr's page when stored, else 0 */
	enum em_snap_page_state state;
	uint32_t page;          /* index of the run's first page in its region */
};

/* The next run of region `region` from page *pos, at most max_pages long (0: no limit);
 * advances *pos. Returns 1 with a run, 0 past the region's end. */
int em_snap_next_run(const struct em_snap_image *img, uint32_t region, uint32_t *pos,
		     uint32_t max_pages, struct em_snap_run *run);

/* Check the checksum of `npages` consecutive stored pages from `page` of a region, read by the
 * caller into buf (a restorer after its read, a userfaultfd handler before UFFDIO_COPY). */
int em_snap_check_pages(const struct em_snap_image *img, uint32_t region, uint32_t page,
			uint32_t npages, const void *buf, struct em_err *err);
/* Read every stored page and check its checksum; the message names the region and page. */
int em_snap_verify_data(const struct em_snap_image *img, struct em_err *err);

/* --- identity of the running system -------------------------------------------------------- */

/* The GNU build id (NT_GNU_BUILD_ID note) of an ELF file, e.g. /proc/self/exe. -ENOENT if it has
 * none. */
int em_snap_build_id(const char *elf_path, uint8_t *out, size_t cap, size_t *len,
		     struct em_err *err);
/* uname -r */
int em_snap_kernel_release(char *buf, size_t cap, struct em_err *err);

/* pread exactly len bytes at off (EINTR and short reads retried): 0, -ENODATA if the file ends
 * first, or -errno. */
int em_snap_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* CRC32C (Castagnoli) of len bytes, continuing from crc (0 to start): SSE4.2 when the CPU has it. */
uint32_t em_snap_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
