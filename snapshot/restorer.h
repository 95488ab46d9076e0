/* snapshot/restorer.h — ember-restore, the program that turns a fresh sandbox into a template
 * restored from a snapshot image (sources: snapshot/restore/; embedded in libem_snapshot as a
 * sealed memfd, like the exec stub).
 *
 * The contract (the host codes against exactly this):
 *
 *   execution  inside the template's sandbox, as /proc/self/fd/5 (execveat of the memfd is the
 *              same), argv: "ember-restore" "--image-fd=4" "--mode=eager" [options]. The process
 *              needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) in its user namespace for
 *              prctl(PR_SET_MM_MAP).
 *   options    --mode=eager|mmap|lazy (default eager), --direct (O_DIRECT reads of the image),
 *              --verify (each page's CRC32C after its read), --uffd-dev-fd=6 (lazy: required),
 *              --thp=auto|always|never (auto: MADV_HUGEPAGE the regions the template had THP in
 *              or asked THP for; always: every anonymous region of 2 MiB or more: measured for a
 *              200 MB heap, exec to READY ~60 ms against ~290 ms in 4K pages, at the price of
 *              THP-backed memory in the template), --no-io-uring (fill with
 *              pread; also chosen on its own when io_uring_setup is refused, e.g. by seccomp),
 *              --timing (phase times on fd 2).
 *   modes      eager: regions populated and filled with io_uring reads (snapshot/fill.h);
 *              mmap: stored runs mapped MAP_PRIVATE from the image (em_snap_map_private);
 *              lazy: a userfaultfd made from fd 6 (em_snap_uffd_open) with the anonymous regions
 *              registered (em_snap_uffd_register) is sent on fd 3 as EMBER_SNAPSHOT_UFFD (the fd
 *              on the frame's header, SCM_RIGHTS) before READY; the host must start serving it
 *              (em_snap_lazy_start) before it reads READY: the resumed template faults on it.
 *   fds        0 /dev/null, 1-2 the log, 3 the host's new channel (EMBER_CHANNEL_FD; the restored
 *              template keeps talking on 3), 4 the image, 5 the restorer's memfd, 6
 *              /dev/userfaultfd or closed. 0-3 are kept as given; 4, 5, 6 and every other fd are
 *              closed and the template's files (fds above 3) reopened at their numbers by path
 *              with their flags and positions.
 *   failure    before the template's memory is touched: the image (Restore.Image, Restore.Kernel),
 *              the executable's build id (Restore.BuildId), every file the image maps or holds
 *              open has its recorded size and mtime (Restore.FileIdentity; device and inode may differ:
 *              a copy with its times kept, on another node, is the same file), no
 *              region overlaps the restorer (Restore.Layout), the vdso/vvar match
 *              (Restore.Vdso), the options (Restore.Usage); later: Restore.Map, Fill,
 *              PageChecksum, Uffd, Fds, Signals, Rseq, Mm. Each sends EMBER_INIT_ERROR with
 *              {"errorType":"Restore.<Check>","errorMessage":"<which file/region/fd, why>"} on fd
 *              3, writes the message to fd 2, and exits 1 (no other process is ever created).
 *   success    the process jumps to the template's capture point with eax = 1 (ember_snap_capture
 *              returns 1): the template is resumed with its memory, fds, signal handlers and
 *              mask, thread pointer, rseq area, mm fields (brk, arg/env, auxv) and
 *              /proc/PID/exe = its executable, comm = its executable's name. It then re-seeds
 *              and sends READY on fd 3.
 *   exe        /proc/PID/exe becomes the template's executable (PR_SET_MM_MAP's exe_fd: the
 *              restorer first replaces its own memfd-backed text and data with anonymous copies,
 *              which the kernel requires).
 *   left over  one page of the restorer's text (its last step, which unmaps the rest of the
 *              restorer's range: text, data, bss, its brk heap) stays mapped in the restored
 *              process, inside EM_SNAP_RESTORER_BASE..END; nothing else of the restorer.
 *
 * Kept out: images whose regions overlap the restorer's range are refused (Restore.Layout). */
#ifndef EMBER_SNAPSHOT_RESTORER_H
#define EMBER_SNAPSHOT_RESTORER_H

struct em_err;

/* The restorer's range: it is linked here (snapshot/build.mk) and keeps all of itself inside. */
#define EM_SNAP_RESTORER_BASE 0x3e0000000000ull
#define EM_SNAP_RESTORER_END  0x3e0100000000ull

/* A close-on-exec memfd holding ember-restore, sealed against every change; execute it with
 * execveat(fd, "", argv, envp, AT_EMPTY_PATH) or as /proc/self/fd/N once dup'ed without
 * close-on-exec to N. */
int em_snap_restorer_memfd(struct em_err *err);

#endif
