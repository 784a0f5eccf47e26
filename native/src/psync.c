/* SPDX-License-Identifier: MIT */
/*
 * psync.c - the emu_ring engine for machines without io_uring: fio's "psync" ioengine behind
 * the io_uring-shaped API of uring.c.
 *
 * Submission performs each I/O at once on the submitting thread, in order (pread(2), pwrite(2) or
 * pwritev2(2) with RWF_DSYNC, fdatasync(2)), and queues its completion; the reaper takes
 * completions from that queue, so the caller's completion path runs on its completion thread as
 * with io_uring. The queue holds ring->capacity completions and emu_ring_submit never accepts
 * more I/Os than it has room for. Differs from io_uring in that an I/O is complete before submit
 * returns, so a slow device slows the submitter instead of the reaper.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "internal.h"

/* The kernel's MAX_RW_COUNT: one read(2)/write(2) never moves more, so res fits in an int32. */
#define MAX_RW_COUNT 0x7ffff000u

int emu_psync_init(struct emu_ring *ring)
{
	struct emu_psync *ps = &ring->psync;
	pthread_condattr_t attr;
	int ret;

	ps->queue = calloc(ring->capacity, sizeof(*ps->queue));
	if (!ps->queue)
		return -ENOMEM;
	ret = pthread_mutex_init(&ps->lock, NULL);
	if (ret)
		goto err_queue;
	ret = pthread_condattr_init(&attr);
	if (ret)
		goto err_mutex;
	/* Reap timeouts are intervals; the monotonic clock does not jump with settimeofday(2). */
	ret = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!ret)
		ret = pthread_cond_init(&ps->completed, &attr);
	pthread_condattr_destroy(&attr);
	if (ret)
		goto err_mutex;
	return 0;
err_mutex:
	pthread_mutex_destroy(&ps->lock);
err_queue:
	free(ps->queue);
	return -ret;
}

void emu_psync_exit(struct emu_ring *ring)
{
	struct emu_psync *ps = &ring->psync;

	pthread_cond_destroy(&ps->completed);
	pthread_mutex_destroy(&ps->lock);
	free(ps->queue);
	free(ps->files);
}

/* pread(2)/pwrite(2)/pwritev2(2) until len bytes, end of file, or an error after no progress. */
static int32_t transfer(int fd, const emu_io *io)
{
	char *buf = (char *)(uintptr_t)io->buf;
	uint32_t len = io->len < MAX_RW_COUNT ? io->len : MAX_RW_COUNT;
	uint32_t done = 0;

	while (done < len) {
		off_t offset = (off_t)(io->offset + done);
		ssize_t n;

		if (io->op == EMU_OP_READ) {
			n = pread(fd, buf + done, len - done, offset);
		} else if (io->flags & EMU_IO_FUA) {
			struct iovec iov = { .iov_base = buf + done, .iov_len = len - done };

			n = pwritev2(fd, &iov, 1, offset, RWF_DSYNC);
		} else {
			n = pwrite(fd, buf + done, len - done, offset);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (int32_t)done : -errno;
		}
		if (n == 0)
			break;
		done += (uint32_t)n;
	}
	return (int32_t)done;
}

static int32_t perform(struct emu_psync *ps, const emu_io *io)
{
	int fd = io->fd;

	if (io->op == EMU_OP_NOP)
		return 0;
	if (io->flags & EMU_IO_FIXED_FILE) {
		if (fd < 0 || (uint32_t)fd >= ps->nr_files || ps->files[fd] < 0)
			return -EBADF;
		fd = ps->files[fd];
	}
	if (io->op == EMU_OP_FSYNC)
		return fdatasync(fd) ? -errno : 0;
	return transfer(fd, io);
}

/* Performs count I/Os in order; emu_ring_submit has checked them and made room for count completions. */
void emu_psync_submit(struct emu_ring *ring, const emu_io *ios, uint32_t count)
{
	struct emu_psync *ps = &ring->psync;

	for (uint32_t i = 0; i < count; i++) {
		int32_t res = perform(ps, &ios[i]);
		emu_completion *cqe;

		pthread_mutex_lock(&ps->lock);
		cqe = &ps->queue[(ps->head + ps->count) % ring->capacity];
		cqe->user_data = ios[i].user_data;
		cqe->res = res;
		cqe->flags = 0;
		ps->count++;
		pthread_cond_signal(&ps->completed);
		pthread_mutex_unlock(&ps->lock);
	}
}

/* Waits on the condition variable (pthread_cond_timedwait(3)) for min_complete, then copies. */
int emu_psync_reap(struct emu_ring *ring, emu_completion *cqes, uint32_t max, uint32_t min_complete,
		   int64_t timeout_ns, uint32_t *reaped)
{
	struct emu_psync *ps = &ring->psync;
	struct timespec deadline;
	int timed_out = 0;
	uint32_t n;

	if (timeout_ns > 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ns / 1000000000LL;
		deadline.tv_nsec += timeout_ns % 1000000000LL;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}

	pthread_mutex_lock(&ps->lock);
	while (ps->count < min_complete && !timed_out) {
		if (timeout_ns > 0)
			timed_out = pthread_cond_timedwait(&ps->completed, &ps->lock, &deadline) == ETIMEDOUT;
		else
			pthread_cond_wait(&ps->completed, &ps->lock);
	}
	n = ps->count < max ? ps->count : max;
	for (uint32_t i = 0; i < n; i++)
		cqes[i] = ps->queue[(ps->head + i) % ring->capacity];
	ps->head = (ps->head + n) % ring->capacity;
	ps->count -= n;
	pthread_mutex_unlock(&ps->lock);

	if (n == 0 && timed_out)
		return -ETIME;
	*reaped = n;
	return 0;
}

/* Keeps a copy of the table; -EBUSY when one is registered already, as io_uring answers. */
int emu_psync_register_files(struct emu_ring *ring, const int32_t *fds, uint32_t count)
{
	struct emu_psync *ps = &ring->psync;

	if (ps->files)
		return -EBUSY;
	ps->files = malloc(count * sizeof(*ps->files));
	if (!ps->files)
		return -ENOMEM;
	memcpy(ps->files, fds, count * sizeof(*ps->files));
	ps->nr_files = count;
	return 0;
}
