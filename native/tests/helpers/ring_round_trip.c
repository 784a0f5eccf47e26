/* SPDX-License-Identifier: MIT */
/*
 * ring_round_trip.c - the emu_ring behaviour both engines (uring.c, psync.c) must show, run by
 * uring_round_trip and psync_round_trip.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define BLOCK 4096u
#define ENTRIES 8u
#define TIMEOUT_NS 5000000000LL
#define STRESS_IOS 2000u

/* Reaps exactly want completions into cqes; 0, or -1 after reporting. */
static int reap_exactly(emu_ring *ring, emu_completion *cqes, uint32_t want)
{
	uint32_t have = 0;

	while (have < want) {
		uint32_t got = 0;
		int ret = emu_ring_reap(ring, cqes + have, want - have, want - have, TIMEOUT_NS, &got);

		if (ret) {
			fprintf(stderr, "reap: %s after %u of %u\n", strerror(-ret), have, want);
			return -1;
		}
		have += got;
	}
	return 0;
}

/* The completion for user_data, or NULL. */
static const emu_completion *find(const emu_completion *cqes, uint32_t count, uint64_t user_data)
{
	for (uint32_t i = 0; i < count; i++)
		if (cqes[i].user_data == user_data)
			return &cqes[i];
	return NULL;
}

static emu_io rw(uint16_t op, uint64_t user_data, int32_t fd, void *buf, uint64_t offset)
{
	emu_io io;

	memset(&io, 0, sizeof(io));
	io.user_data = user_data;
	io.op = op;
	io.fd = fd;
	io.buf = (uint64_t)(uintptr_t)buf;
	io.len = BLOCK;
	io.offset = offset;
	return io;
}

struct reaper {
	emu_ring *ring;
	uint32_t expected;
	uint32_t reaped;
	uint32_t bad;             /* completions with a result the submitter did not ask for */
	uint64_t user_data_sum;
};

/* The completion thread of a hardware queue: reaps until it has seen every I/O. */
static void *reaper_main(void *arg)
{
	struct reaper *r = arg;
	emu_completion cqes[ENTRIES * 2];

	while (r->reaped < r->expected) {
		uint32_t got = 0;
		int ret = emu_ring_reap(r->ring, cqes, ENTRIES * 2, 1, TIMEOUT_NS, &got);

		if (ret) {
			fprintf(stderr, "reaper: %s after %u of %u\n", strerror(-ret), r->reaped, r->expected);
			break;
		}
		for (uint32_t i = 0; i < got; i++) {
			int32_t want = cqes[i].user_data % 2 ? (int32_t)BLOCK : 0;

			r->bad += cqes[i].res != want;
			r->user_data_sum += cqes[i].user_data;
		}
		r->reaped += got;
	}
	return NULL;
}

/* One submitter and one reaper on the same ring, NOPs and reads interleaved. */
static int check_concurrent_reaper(emu_ring *ring, int32_t fd, void *buf)
{
	struct reaper r = { .ring = ring, .expected = STRESS_IOS };
	emu_io ios[ENTRIES];
	uint64_t next = 0, want_sum = 0;
	pthread_t thread;

	if (pthread_create(&thread, NULL, reaper_main, &r))
		return -1;
	while (next < STRESS_IOS) {
		uint32_t batch = 0, accepted = 0;
		int ret;

		while (batch < ENTRIES && next + batch < STRESS_IOS) {
			uint64_t user_data = next + batch;

			/* Odd user_data reads a block (res BLOCK), even is a NOP (res 0). */
			ios[batch] = rw(user_data % 2 ? EMU_OP_READ : EMU_OP_NOP, user_data, user_data % 2 ? fd : -1,
					user_data % 2 ? buf : NULL, 0);
			if (ios[batch].op == EMU_OP_NOP) {
				ios[batch].len = 0;
				ios[batch].buf = 0;
			}
			batch++;
		}
		ret = emu_ring_submit(ring, ios, batch, &accepted);
		if (ret == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (ret) {
			fprintf(stderr, "submit: %s\n", strerror(-ret));
			break;
		}
		for (uint32_t i = 0; i < accepted; i++)
			want_sum += next + i;
		next += accepted;
	}
	pthread_join(thread, NULL);
	if (next != STRESS_IOS || r.reaped != STRESS_IOS || r.bad || r.user_data_sum != want_sum) {
		fprintf(stderr, "concurrent: submitted %llu, reaped %u, bad %u, user_data sum %llu (want %llu)\n",
			(unsigned long long)next, r.reaped, r.bad, (unsigned long long)r.user_data_sum,
			(unsigned long long)want_sum);
		return -1;
	}
	return 0;
}

static void *blocked_reaper_main(void *arg)
{
	struct reaper *r = arg;
	emu_completion cqe;
	uint32_t got = 0;

	if (!emu_ring_reap(r->ring, &cqe, 1, 1, 0, &got) && got == 1) {
		r->reaped = 1;
		r->user_data_sum = cqe.user_data;
	}
	return NULL;
}

int t_ring_round_trip(int32_t engine)
{
	emu_ring_params params = { .entries = ENTRIES - 3, .engine = engine };
	emu_completion cqes[ENTRIES * 4];
	emu_io ios[ENTRIES * 4];
	void *bufs[4] = { NULL };
	const emu_completion *c;
	emu_ring *ring = NULL;
	emu_blockdev_info info;
	char path[PATH_MAX];
	int32_t fd = -1;
	uint32_t n, got;
	int status = T_EXIT_FAIL;
	int ret;

	t_scratch_path(path, sizeof(path), engine == EMU_ENGINE_PSYNC ? "psync" : "uring");
	ret = emu_ring_create(&params, &ring);
	if (engine == EMU_ENGINE_IO_URING && (ret == -ENOSYS || ret == -EPERM))
		return t_skip("io_uring_setup(2) refused: io_uring unavailable here");
	T_CHECK_EQ(ret, 0);
	T_CHECK_EQ(params.engine_out, engine);
	T_CHECK_EQ(params.fallback_errno, 0);
	/* entries is rounded up to a power of two. */
	T_CHECK_EQ(params.entries, ENTRIES);

	ret = emu_blockdev_open(path, EMU_OPEN_CREATE, 16 * BLOCK, &fd, &info);
	if (ret == -EINVAL) {
		status = t_skip("the build directory's filesystem refuses O_DIRECT");
		goto err;
	}
	T_CHECK_EQ(ret, 0);
	T_CHECK(info.dio_mem_align <= BLOCK && info.dio_offset_align <= BLOCK);
	for (int i = 0; i < 4; i++) {
		T_CHECK_EQ(emu_mem_alloc(BLOCK, -1, &bufs[i]), 0);
		memset(bufs[i], 'a' + i, BLOCK);
	}

	/* Four writes in one batch, one of them FUA (RWF_DSYNC). */
	for (int i = 0; i < 4; i++)
		ios[i] = rw(EMU_OP_WRITE, 100 + i, fd, bufs[i], (uint64_t)i * BLOCK);
	ios[2].flags = EMU_IO_FUA;
	T_CHECK_EQ(emu_ring_submit(ring, ios, 4, &n), 0);
	T_CHECK_EQ(n, 4);
	T_CHECK_EQ(reap_exactly(ring, cqes, 4), 0);
	for (int i = 0; i < 4; i++) {
		c = find(cqes, 4, 100 + i);
		T_CHECK(c != NULL);
		T_CHECK_EQ(c->res, BLOCK);
		T_CHECK_EQ(c->flags, 0);
	}

	/* A cache flush and a NOP complete with 0. */
	ios[0] = rw(EMU_OP_FSYNC, 200, fd, NULL, 0);
	ios[0].len = 0;
	ios[1] = rw(EMU_OP_NOP, 201, -1, NULL, 0);
	ios[1].len = 0;
	T_CHECK_EQ(emu_ring_submit(ring, ios, 2, &n), 0);
	T_CHECK_EQ(n, 2);
	T_CHECK_EQ(reap_exactly(ring, cqes, 2), 0);
	T_CHECK(find(cqes, 2, 200) && find(cqes, 2, 200)->res == 0);
	T_CHECK(find(cqes, 2, 201) && find(cqes, 2, 201)->res == 0);

	/* Read the blocks back into other buffers, plus one past the end of the file. */
	for (int i = 0; i < 4; i++) {
		memset(bufs[i], 0, BLOCK);
		ios[i] = rw(EMU_OP_READ, 300 + i, fd, bufs[i], (uint64_t)(3 - i) * BLOCK);
	}
	T_CHECK_EQ(emu_ring_submit(ring, ios, 4, &n), 0);
	T_CHECK_EQ(n, 4);
	T_CHECK_EQ(reap_exactly(ring, cqes, 4), 0);
	for (int i = 0; i < 4; i++) {
		unsigned char *b = bufs[i];

		c = find(cqes, 4, 300 + i);
		T_CHECK(c != NULL);
		T_CHECK_EQ(c->res, BLOCK);
		T_CHECK_EQ(b[0], 'a' + 3 - i);
		T_CHECK_EQ(b[BLOCK - 1], 'a' + 3 - i);
	}

	/* Errors come back as -errno in res: end of file, a closed descriptor, a misaligned O_DIRECT offset. */
	ios[0] = rw(EMU_OP_READ, 400, fd, bufs[0], 16 * BLOCK);
	ios[1] = rw(EMU_OP_READ, 401, -1, bufs[0], 0);
	ios[2] = rw(EMU_OP_READ, 402, fd, bufs[0], 1);
	T_CHECK_EQ(emu_ring_submit(ring, ios, 3, &n), 0);
	T_CHECK_EQ(n, 3);
	T_CHECK_EQ(reap_exactly(ring, cqes, 3), 0);
	T_CHECK_EQ(find(cqes, 3, 400)->res, 0);
	T_CHECK_EQ(find(cqes, 3, 401)->res, -EBADF);
	T_CHECK_EQ(find(cqes, 3, 402)->res, -EINVAL);

	/* Nothing outstanding: min_complete 0 returns at once, a timed wait expires with -ETIME. */
	got = 99;
	T_CHECK_EQ(emu_ring_reap(ring, cqes, 4, 0, 0, &got), 0);
	T_CHECK_EQ(got, 0);
	T_CHECK_EQ(emu_ring_reap(ring, cqes, 4, 1, 20000000, &got), -ETIME);
	T_CHECK_EQ(emu_ring_reap(ring, cqes, 4, 5, 0, &got), -EINVAL);

	/* An invalid descriptor rejects the whole batch: nothing is submitted. */
	ios[0] = rw(EMU_OP_NOP, 500, -1, NULL, 0);
	ios[1] = rw(EMU_OP_READ, 501, fd, bufs[0], 0);
	ios[1].flags = EMU_IO_FUA;
	T_CHECK_EQ(emu_ring_submit(ring, ios, 2, &n), -EINVAL);
	ios[1] = rw(9, 501, fd, bufs[0], 0);
	T_CHECK_EQ(emu_ring_submit(ring, ios, 2, &n), -EINVAL);
	T_CHECK_EQ(emu_ring_reap(ring, cqes, 4, 0, 0, &got), 0);
	T_CHECK_EQ(got, 0);

	/* The queue fills: one submission queue per call, twice that outstanding, then -EAGAIN. */
	for (uint32_t i = 0; i < ENTRIES * 4; i++) {
		ios[i] = rw(EMU_OP_NOP, 600 + i, -1, NULL, 0);
		ios[i].len = 0;
	}
	T_CHECK_EQ(emu_ring_submit(ring, ios, ENTRIES * 4, &n), 0);
	T_CHECK_EQ(n, ENTRIES);
	T_CHECK_EQ(emu_ring_submit(ring, ios + ENTRIES, ENTRIES * 3, &n), 0);
	T_CHECK_EQ(n, ENTRIES);
	T_CHECK_EQ(emu_ring_submit(ring, ios + 2 * ENTRIES, ENTRIES * 2, &n), -EAGAIN);
	T_CHECK_EQ(reap_exactly(ring, cqes, 2 * ENTRIES), 0);
	for (uint32_t i = 0; i < 2 * ENTRIES; i++)
		T_CHECK(find(cqes, 2 * ENTRIES, 600 + i) && find(cqes, 2 * ENTRIES, 600 + i)->res == 0);

	/* A reaper blocked without a timeout wakes when another thread submits. */
	{
		struct reaper r = { .ring = ring };
		pthread_t thread;

		T_CHECK_EQ(pthread_create(&thread, NULL, blocked_reaper_main, &r), 0);
		ios[0] = rw(EMU_OP_NOP, 700, -1, NULL, 0);
		ios[0].len = 0;
		ret = emu_ring_submit(ring, ios, 1, &n);
		pthread_join(thread, NULL);
		T_CHECK_EQ(ret, 0);
		T_CHECK_EQ(r.reaped, 1);
		T_CHECK_EQ(r.user_data_sum, 700);
	}

	T_CHECK_EQ(check_concurrent_reaper(ring, fd, bufs[0]), 0);
	status = T_EXIT_PASS;
err:
	for (int i = 0; i < 4; i++)
		if (bufs[i])
			emu_mem_free(bufs[i], BLOCK);
	if (fd >= 0)
		emu_blockdev_close(fd);
	unlink(path);
	if (ring)
		emu_ring_destroy(ring);
	return status;
}
