/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the shim's .c files share and the managed side never sees.
 *
 * NOTE: everything here has hidden visibility (the library is built with -fvisibility=hidden);
 * only EMU_EXPORT functions from emu_shim.h leave libemushim.so, and the build checks that.
 */
#ifndef EMU_INTERNAL_H
#define EMU_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "emu_shim.h"

/* The page size the managed side plans buffers with; O_DIRECT alignment never exceeds it. */
#define EMU_PAGE_SIZE 4096u

/*
 * Reads a text file (sysfs, procfs) into buf with open(2) and read(2) until EOF, NUL-terminated.
 * Returns the length, or -errno. A file that does not fit in size - 1 bytes is -EFBIG, unless
 * prefix is set: then its first size - 1 bytes are enough (the first block of /proc/cpuinfo).
 */
static inline int emu_read_text(const char *path, char *buf, size_t size, int prefix)
{
	size_t len = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		char probe;
		ssize_t n;

		if (len == size - 1) {
			/* sysfs files may be exactly full; only a further byte makes them too big. */
			n = prefix ? 0 : read(fd, &probe, 1);
			if (n < 0 && errno == EINTR)
				continue;
			ret = n < 0 ? -errno : n > 0 ? -EFBIG : (int)len;
			break;
		}
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0) {
			ret = (int)len;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return ret;
}

/* psync's completion queue: a ring buffer of emu_completion that submit fills and reap drains. */
struct emu_psync {
	pthread_mutex_t lock;
	pthread_cond_t completed;   /* signalled when a completion is queued; CLOCK_MONOTONIC */
	emu_completion *queue;      /* I: ring->capacity entries */
	uint32_t head;              /* L: lock; oldest queued completion */
	uint32_t count;             /* L: lock; completions queued */
	/* Registered file table: written once by emu_ring_register_files, before submits use it. */
	int32_t *files;
	uint32_t nr_files;
};

struct emu_ring {
	int32_t engine;             /* I: EMU_ENGINE_IO_URING or EMU_ENGINE_PSYNC */
	uint32_t entries;           /* I: submission queue size */
	uint32_t capacity;          /* I: completions that may be outstanding: CQ size for io_uring */
	/* Submitted but not yet reaped; the submitter adds, the reaper subtracts. */
	atomic_uint inflight;
	union {
		struct io_uring uring;
		struct emu_psync psync;
	};
};

/* psync.c: the engine behind emu_ring_* when ring->engine is EMU_ENGINE_PSYNC. */
int emu_psync_init(struct emu_ring *ring);
void emu_psync_exit(struct emu_ring *ring);
void emu_psync_submit(struct emu_ring *ring, const emu_io *ios, uint32_t count);
int emu_psync_reap(struct emu_ring *ring, emu_completion *cqes, uint32_t max, uint32_t min_complete,
		   int64_t timeout_ns, uint32_t *reaped);
int emu_psync_register_files(struct emu_ring *ring, const int32_t *fds, uint32_t count);

#endif /* EMU_INTERNAL_H */
