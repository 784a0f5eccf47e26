/* SPDX-License-Identifier: MIT */
/*
 * Description: registered buffers (IORING_OP_READ_FIXED/WRITE_FIXED) and registered files
 * (IOSQE_FIXED_FILE) on both engines: data written from a registered buffer through a file index
 * reads back into another; a buffer outside its registration is -EFAULT on io_uring; an unknown
 * file index is -EBADF; registering twice is -EBUSY. The io_uring half skips when io_uring_setup(2)
 * is refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define BLOCK 4096u

static emu_io fixed_io(uint16_t op, uint64_t user_data, int32_t index, void *buf, uint16_t buf_index,
		       uint64_t offset)
{
	emu_io io;

	memset(&io, 0, sizeof(io));
	io.user_data = user_data;
	io.op = op;
	io.flags = EMU_IO_FIXED_BUFFER | EMU_IO_FIXED_FILE;
	io.fd = index;
	io.buf = (uint64_t)(uintptr_t)buf;
	io.buf_index = buf_index;
	io.len = BLOCK;
	io.offset = offset;
	return io;
}

static int reap(emu_ring *ring, emu_completion *cqes, uint32_t want)
{
	uint32_t have = 0, got;

	while (have < want) {
		if (emu_ring_reap(ring, cqes + have, want - have, want - have, 5000000000LL, &got))
			return -1;
		have += got;
	}
	return 0;
}

static int32_t res_of(const emu_completion *cqes, uint32_t count, uint64_t user_data)
{
	for (uint32_t i = 0; i < count; i++)
		if (cqes[i].user_data == user_data)
			return cqes[i].res;
	return INT32_MIN;
}

static int check_engine(int32_t engine)
{
	emu_ring_params params = { .entries = 4, .engine = engine };
	emu_completion cqes[4];
	emu_iovec iovs[2];
	emu_io ios[4];
	emu_ring *ring = NULL;
	unsigned char *bufs = NULL;
	char path[PATH_MAX];
	int32_t fds[2] = { -1, -1 };
	uint32_t n;
	int status = T_EXIT_FAIL;
	int ret;

	t_scratch_path(path, sizeof(path), engine == EMU_ENGINE_PSYNC ? "fixed-psync" : "fixed-uring");
	ret = emu_ring_create(&params, &ring);
	if (engine == EMU_ENGINE_IO_URING && (ret == -ENOSYS || ret == -EPERM))
		return t_skip("io_uring_setup(2) refused: io_uring unavailable here");
	T_CHECK_EQ(ret, 0);
	ret = emu_blockdev_open(path, EMU_OPEN_CREATE, 4 * BLOCK, &fds[1], NULL);
	if (ret == -EINVAL) {
		status = t_skip("the build directory's filesystem refuses O_DIRECT");
		goto err;
	}
	T_CHECK_EQ(ret, 0);

	/* Two registered buffers in one allocation; file index 1 is the file, index 0 a hole (-1). */
	T_CHECK_EQ(emu_mem_alloc(2 * BLOCK, -1, (void **)&bufs), 0);
	iovs[0].base = (uint64_t)(uintptr_t)bufs;
	iovs[0].len = BLOCK;
	iovs[1].base = (uint64_t)(uintptr_t)(bufs + BLOCK);
	iovs[1].len = BLOCK;
	T_CHECK_EQ(emu_ring_register_buffers(ring, iovs, 2), 0);
	T_CHECK_EQ(emu_ring_register_files(ring, fds, 2), 0);
	T_CHECK_EQ(emu_ring_register_files(ring, fds, 2), -EBUSY);
	T_CHECK_EQ(emu_ring_register_buffers(ring, NULL, 2), -EINVAL);
	T_CHECK_EQ(emu_ring_register_files(ring, fds, 0), -EINVAL);

	memset(bufs, 'w', BLOCK);
	memset(bufs + BLOCK, 0, BLOCK);
	ios[0] = fixed_io(EMU_OP_WRITE, 1, 1, bufs, 0, BLOCK);
	ios[0].flags |= EMU_IO_FUA;
	T_CHECK_EQ(emu_ring_submit(ring, ios, 1, &n), 0);
	T_CHECK_EQ(reap(ring, cqes, 1), 0);
	T_CHECK_EQ(cqes[0].res, BLOCK);

	ios[0] = fixed_io(EMU_OP_READ, 2, 1, bufs + BLOCK, 1, BLOCK);
	ios[1] = fixed_io(EMU_OP_READ, 3, 7, bufs + BLOCK, 1, 0);
	ios[2] = fixed_io(EMU_OP_FSYNC, 4, 1, NULL, 0, 0);
	ios[2].flags = EMU_IO_FIXED_FILE;
	ios[2].len = 0;
	T_CHECK_EQ(emu_ring_submit(ring, ios, 3, &n), 0);
	T_CHECK_EQ(n, 3);
	T_CHECK_EQ(reap(ring, cqes, 3), 0);
	T_CHECK_EQ(res_of(cqes, 3, 2), BLOCK);
	T_CHECK_EQ(res_of(cqes, 3, 3), -EBADF);
	T_CHECK_EQ(res_of(cqes, 3, 4), 0);
	T_CHECK(!memcmp(bufs, bufs + BLOCK, BLOCK));

	/* io_uring checks the address against the registration; psync never looks at it. */
	if (engine == EMU_ENGINE_IO_URING) {
		ios[0] = fixed_io(EMU_OP_READ, 5, 1, bufs + BLOCK, 0, 0);
		T_CHECK_EQ(emu_ring_submit(ring, ios, 1, &n), 0);
		T_CHECK_EQ(reap(ring, cqes, 1), 0);
		T_CHECK_EQ(cqes[0].res, -EFAULT);
		T_CHECK_EQ(emu_ring_register_buffers(ring, iovs, 2), -EBUSY);
	}
	status = T_EXIT_PASS;
err:
	if (ring)
		emu_ring_destroy(ring);
	if (bufs)
		emu_mem_free(bufs, 2 * BLOCK);
	if (fds[1] >= 0)
		emu_blockdev_close(fds[1]);
	unlink(path);
	return status;
}

int main(void)
{
	int psync, uring;

	psync = check_engine(EMU_ENGINE_PSYNC);
	printf("psync: %s\n", psync == T_EXIT_PASS ? "ok" : "FAIL");
	uring = check_engine(EMU_ENGINE_IO_URING);
	printf("io_uring: %s\n", uring == T_EXIT_PASS ? "ok" : uring == T_EXIT_SKIP ? "skipped" : "FAIL");
	if (psync == T_EXIT_FAIL || uring == T_EXIT_FAIL)
		return T_EXIT_FAIL;
	return uring;
}
