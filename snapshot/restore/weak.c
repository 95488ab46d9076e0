/* snapshot/restore/weak.c — definitions for the undefined weak functions of static glibc 2.36.
 *
 * glibc calls them as `if (&f != NULL) f ()`. Unresolved, they link as address 0, and from a
 * program linked at 0x3e0000000000 (restore.h) a call to 0 is more than 2 GiB away: the linker
 * refuses the PC-relative call ("relocation truncated to fit"). Defined here as what their
 * absence means (nothing to do), the checks pass and the calls do what not calling did. */
#include <unistd.h>

void __pthread_initialize_minimal(void);
void __call_tls_dtors(void);
void __cxa_finalize(void *dso);
void __pthread_unwind(void *buf);

/* libpthread is part of libc since 2.34: there is no separate initialization */
void __pthread_initialize_minimal(void)
{
}

/* the restorer has no thread_local objects with destructors */
void __call_tls_dtors(void)
{
}

/* crtbeginS.o's destructor hook: a static program has no other DSO to finalize */
void __cxa_finalize(void *dso)
{
	(void)dso;
}

/* thread cancellation: the restorer never cancels a thread, so this is unreachable */
void __pthread_unwind(void *buf)
{
	(void)buf;
	_exit(127);
}

/* per-thread buffers freed at thread exit; lazy.c's server thread never runs in the restorer */
void __glibc_tls_internal_free(void);
void __glibc_tls_internal_free(void)
{
}
