/* SPDX-License-Identifier: MIT */
/*
 * uring.c - emu_ring: batched asynchronous I/O on io_uring (liburing), the engine under Emu's
 * blk-mq hardware queues; psync.c provides the same calls without io_uring.
 *
 * One thread submits and one thread reaps, concurrently, as a hardware queue's dispatcher and its
 * completion thread do. liburing keeps the SQ and CQ sides apart as long as reaping never queues
 * an SQE, which holds when the kernel has IORING_FEAT_EXT_ARG (Linux 5.11): waits with a timeout
 * pass it to io_uring_enter(2) instead of queueing an IORING_OP_TIMEOUT. Submission is capped at
 * the CQ size of unreaped I/Os (ring->inflight), so completions never overflow the CQ ring and
 * psync's completion queue has a fixed size.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "internal.h"

#define EMU_MAX_ENTRIES 32768u    /* IORING_MAX_ENTRIES */
#define NSEC_PER_SEC 1000000000LL
/* CQEs copied per io_uring_peek_batch_cqe(3) call; the pointer array lives on the stack. */
#define REAP_BATCH 32u

/* The op/flag combinations both engines accept. */
static int emu_io_is_valid(const emu_io *io)
{
	switch (io->op) {
	case EMU_OP_READ:
		return !(io->flags & ~(EMU_IO_FIXED_BUFFER | EMU_IO_FIXED_FILE));
	case EMU_OP_WRITE:
		return !(io->flags & ~(EMU_IO_FIXED_BUFFER | EMU_IO_FIXED_FILE | EMU_IO_FUA));
	case EMU_OP_FSYNC:
		return !(io->flags & ~EMU_IO_FIXED_FILE);
	case EMU_OP_NOP:
		return io->flags == 0;
	default:
		return 0;
	}
}

/* /proc/sys/kernel/io_uring_disabled (Linux 6.6); a kernel without the knob has io_uring enabled. */
static int io_uring_disabled(void)
{
	char buf[32];
	int ret;

	ret = emu_read_text("/proc/sys/kernel/io_uring_disabled", buf, sizeof(buf), 0);
	if (ret < 0)
		return 0;
	return atoi(buf);
}

/*
 * io_uring_queue_init(3) with IORING_SETUP_SUBMIT_ALL (Linux 5.18), so an SQE that fails early
 * completes with its error instead of stopping the rest of the batch; older kernels refuse the
 * flag with -EINVAL and get a plain ring.
 */
static int uring_init(struct emu_ring *ring, uint32_t entries)
{
	int ret;

	ret = io_uring_queue_init(entries, &ring->uring, IORING_SETUP_SUBMIT_ALL);
	if (ret == -EINVAL)
		ret = io_uring_queue_init(entries, &ring->uring, 0);
	if (ret)
		return ret;
	ring->engine = EMU_ENGINE_IO_URING;
	ring->entries = *ring->uring.sq.kring_entries;
	ring->capacity = *ring->uring.cq.kring_entries;
	return 0;
}

static int psync_init(struct emu_ring *ring, uint32_t entries)
{
	ring->engine = EMU_ENGINE_PSYNC;
	ring->entries = entries;
	/* Twice the submission queue, as io_uring sizes its CQ. */
	ring->capacity = entries * 2;
	return emu_psync_init(ring);
}

/*
 * io_uring_queue_init(3), or a psync queue. Under EMU_ENGINE_AUTO a disabled io_uring
 * (io_uring_disabled != 0: EPERM) or a refused io_uring_setup(2) (ENOSYS, EPERM under seccomp)
 * selects psync and is reported through engine_out and fallback_errno; entries is updated to the
 * rounded size.
 */
EMU_EXPORT int32_t emu_ring_create(emu_ring_params *params, emu_ring **out)
{
	struct emu_ring *ring;
	uint32_t entries;
	int fallback = 0;
	int ret;

	if (!params || !out || params->entries == 0 || params->entries > EMU_MAX_ENTRIES)
		return -EINVAL;
	if (params->engine != EMU_ENGINE_AUTO && params->engine != EMU_ENGINE_IO_URING &&
	    params->engine != EMU_ENGINE_PSYNC)
		return -EINVAL;
	entries = 1;
	while (entries < params->entries)
		entries <<= 1;

	ring = calloc(1, sizeof(*ring));
	if (!ring)
		return -ENOMEM;

	if (params->engine == EMU_ENGINE_PSYNC) {
		ret = psync_init(ring, entries);
	} else if (params->engine == EMU_ENGINE_AUTO && io_uring_disabled()) {
		fallback = EPERM;
		ret = psync_init(ring, entries);
	} else {
		ret = uring_init(ring, entries);
		if (params->engine == EMU_ENGINE_AUTO && (ret == -ENOSYS || ret == -EPERM)) {
			fallback = -ret;
			ret = psync_init(ring, entries);
		}
	}
	if (ret) {
		free(ring);
		return ret;
	}
	atomic_init(&ring->inflight, 0);
	params->entries = ring->entries;
	params->engine_out = ring->engine;
	params->fallback_errno = fallback;
	*out = ring;
	return 0;
}

/* io_uring_queue_exit(3), or freeing the psync queue. */
EMU_EXPORT int32_t emu_ring_destroy(emu_ring *ring)
{
	if (!ring)
		return -EINVAL;
	if (ring->engine == EMU_ENGINE_IO_URING)
		io_uring_queue_exit(&ring->uring);
	else
		emu_psync_exit(ring);
	free(ring);
	return 0;
}

static void prep_sqe(struct io_uring_sqe *sqe, const emu_io *io)
{
	void *buf = (void *)(uintptr_t)io->buf;

	switch (io->op) {
	case EMU_OP_READ:
		if (io->flags & EMU_IO_FIXED_BUFFER)
			io_uring_prep_read_fixed(sqe, io->fd, buf, io->len, io->offset, io->buf_index);
		else
			io_uring_prep_read(sqe, io->fd, buf, io->len, io->offset);
		break;
	case EMU_OP_WRITE:
		if (io->flags & EMU_IO_FIXED_BUFFER)
			io_uring_prep_write_fixed(sqe, io->fd, buf, io->len, io->offset, io->buf_index);
		else
			io_uring_prep_write(sqe, io->fd, buf, io->len, io->offset);
		if (io->flags & EMU_IO_FUA)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case EMU_OP_FSYNC:
		io_uring_prep_fsync(sqe, io->fd, IORING_FSYNC_DATASYNC);
		break;
	default:
		io_uring_prep_nop(sqe);
		break;
	}
	if (io->flags & EMU_IO_FIXED_FILE)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, io->user_data);
}

/*
 * io_uring_submit(3) until the kernel has consumed every queued SQE. Once the SQ tail is published
 * the SQEs belong to the kernel and cannot be taken back, so transient refusals (-EAGAIN, -EBUSY,
 * -EINTR) and partial consumption are retried here rather than reported as "not accepted".
 */
static int uring_flush(struct io_uring *uring)
{
	for (;;) {
		int ret = io_uring_submit(uring);

		if (ret >= 0 && io_uring_sq_ready(uring) == 0)
			return 0;
		if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR)
			return ret;
		sched_yield();
	}
}

/*
 * Queues count descriptors with io_uring_get_sqe(3) and submits them with one io_uring_submit(3)
 * (psync: performs them in order). Accepts at most one submission queue (entries) per call and
 * no more than capacity unreaped I/Os; -EAGAIN when none fit, -EINVAL (nothing submitted) for an
 * invalid descriptor.
 */
EMU_EXPORT int32_t emu_ring_submit(emu_ring *ring, const emu_io *ios, uint32_t count, uint32_t *submitted)
{
	uint32_t room, n;

	if (!ring || (!ios && count) || !submitted)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++)
		if (!emu_io_is_valid(&ios[i]))
			return -EINVAL;
	if (count == 0) {
		*submitted = 0;
		return 0;
	}

	n = count < ring->entries ? count : ring->entries;
	room = ring->capacity - atomic_load_explicit(&ring->inflight, memory_order_acquire);
	if (n > room)
		n = room;
	/* The SQ is empty after every submit unless a submit failed and left SQEs behind. */
	if (ring->engine == EMU_ENGINE_IO_URING && n > io_uring_sq_space_left(&ring->uring))
		n = io_uring_sq_space_left(&ring->uring);
	if (n == 0)
		return -EAGAIN;
	/* Counted before the kernel can complete them, so the reaper never sees inflight underflow. */
	atomic_fetch_add_explicit(&ring->inflight, n, memory_order_acq_rel);

	if (ring->engine == EMU_ENGINE_PSYNC) {
		emu_psync_submit(ring, ios, n);
	} else {
		int ret;

		for (uint32_t i = 0; i < n; i++)
			prep_sqe(io_uring_get_sqe(&ring->uring), &ios[i]);
		ret = uring_flush(&ring->uring);
		if (ret)
			return ret;
	}
	*submitted = n;
	return 0;
}

static struct timespec monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static int64_t ns_between(struct timespec from, struct timespec to)
{
	return (to.tv_sec - from.tv_sec) * NSEC_PER_SEC + (to.tv_nsec - from.tv_nsec);
}

/*
 * Waits until min_complete CQEs are ready: io_uring_wait_cqe_nr(3) without a timeout,
 * io_uring_wait_cqes(3) with one. Signals (the .NET runtime sends them to suspend threads)
 * interrupt the wait with -EINTR; it resumes with what is left of the timeout.
 */
static int uring_wait(struct io_uring *uring, uint32_t min_complete, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe;
	struct timespec start;
	int64_t left = timeout_ns;
	int ret;

	if (timeout_ns <= 0) {
		do
			ret = io_uring_wait_cqe_nr(uring, &cqe, min_complete);
		while (ret == -EINTR);
		return ret;
	}
	if (!(uring->features & IORING_FEAT_EXT_ARG))
		return -EOPNOTSUPP;
	start = monotonic_now();
	for (;;) {
		struct __kernel_timespec ts = {
			.tv_sec = left / NSEC_PER_SEC,
			.tv_nsec = left % NSEC_PER_SEC,
		};

		ret = io_uring_wait_cqes(uring, &cqe, min_complete, &ts, NULL);
		if (ret != -EINTR)
			return ret;
		left = timeout_ns - ns_between(start, monotonic_now());
		if (left <= 0)
			return -ETIME;
	}
}

/* io_uring_peek_batch_cqe(3) + io_uring_cq_advance(3) in batches of REAP_BATCH. */
static uint32_t uring_copy(struct io_uring *uring, emu_completion *cqes, uint32_t max)
{
	struct io_uring_cqe *batch[REAP_BATCH];
	uint32_t n = 0;

	while (n < max) {
		uint32_t want = max - n < REAP_BATCH ? max - n : REAP_BATCH;
		uint32_t got = io_uring_peek_batch_cqe(uring, batch, want);

		for (uint32_t i = 0; i < got; i++) {
			cqes[n + i].user_data = batch[i]->user_data;
			cqes[n + i].res = batch[i]->res;
			cqes[n + i].flags = 0;
		}
		io_uring_cq_advance(uring, got);
		n += got;
		if (got < want)
			break;
	}
	return n;
}

/*
 * Copies up to max completions, first waiting for min_complete of them (for at most timeout_ns
 * when > 0). -ETIME when the timeout expires with none; -EOPNOTSUPP for a timed wait on a kernel
 * without IORING_FEAT_EXT_ARG, where it would race the submitter for an SQE.
 */
EMU_EXPORT int32_t emu_ring_reap(emu_ring *ring, emu_completion *cqes, uint32_t max, uint32_t min_complete,
				 int64_t timeout_ns, uint32_t *reaped)
{
	uint32_t n;
	int ret = 0;

	if (!ring || !cqes || !reaped || max == 0 || min_complete > max)
		return -EINVAL;
	if (ring->engine == EMU_ENGINE_PSYNC) {
		ret = emu_psync_reap(ring, cqes, max, min_complete, timeout_ns, &n);
	} else {
		if (min_complete)
			ret = uring_wait(&ring->uring, min_complete, timeout_ns);
		if (ret && ret != -ETIME)
			return ret;
		n = uring_copy(&ring->uring, cqes, max);
		if (n)
			ret = 0;
	}
	if (ret)
		return ret;
	atomic_fetch_sub_explicit(&ring->inflight, n, memory_order_acq_rel);
	*reaped = n;
	return 0;
}

/* io_uring_register_buffers(3); psync reads and writes the addresses directly and keeps nothing. */
EMU_EXPORT int32_t emu_ring_register_buffers(emu_ring *ring, const emu_iovec *iovs, uint32_t count)
{
	struct iovec *vecs;
	int ret;

	if (!ring || !iovs || count == 0)
		return -EINVAL;
	if (ring->engine == EMU_ENGINE_PSYNC)
		return 0;
	vecs = calloc(count, sizeof(*vecs));
	if (!vecs)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++) {
		vecs[i].iov_base = (void *)(uintptr_t)iovs[i].base;
		vecs[i].iov_len = (size_t)iovs[i].len;
	}
	ret = io_uring_register_buffers(&ring->uring, vecs, count);
	free(vecs);
	return ret;
}

/* io_uring_register_files(3); psync keeps the table and looks fixed files up in it. */
EMU_EXPORT int32_t emu_ring_register_files(emu_ring *ring, const int32_t *fds, uint32_t count)
{
	if (!ring || !fds || count == 0)
		return -EINVAL;
	if (ring->engine == EMU_ENGINE_PSYNC)
		return emu_psync_register_files(ring, fds, count);
	return io_uring_register_files(&ring->uring, fds, count);
}
