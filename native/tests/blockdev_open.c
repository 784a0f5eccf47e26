/* SPDX-License-Identifier: MIT */
/*
 * Description: emu_blockdev_open on regular files: creates with fallocate and O_DIRECT, reopens,
 * grows only with EMU_OPEN_GROW, and on every error (-EFBIG, -EISDIR, -ENOENT, -EINVAL) leaves the
 * filesystem untouched; emu_blockdev_peek reads through the page cache; emu_blockdev_close closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define MIB (1u << 20)

static int is_power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

int main(void)
{
	char dir[PATH_MAX / 2], path[PATH_MAX], missing[PATH_MAX], orphan[PATH_MAX];
	unsigned char pattern[100], peeked[200];
	emu_blockdev_info info;
	struct stat before, after;
	void *block = NULL;
	int32_t fd = -1, fd2 = -1;
	uint32_t got;
	int status = T_EXIT_FAIL;
	int ret;

	t_scratch_path(dir, sizeof(dir), "blockdev");
	snprintf(path, sizeof(path), "%s/disk.img", dir);
	snprintf(missing, sizeof(missing), "%s/missing.img", dir);
	snprintf(orphan, sizeof(orphan), "%s/no/such/dir/disk.img", dir);
	T_CHECK_EQ(t_mkdirs(dir), 0);

	/* Create: O_CREAT|O_EXCL|O_DIRECT, then fallocate to the size. */
	ret = emu_blockdev_open(path, EMU_OPEN_CREATE, MIB, &fd, &info);
	if (ret == -EINVAL) {
		status = t_skip("the build directory's filesystem refuses O_DIRECT");
		goto err;
	}
	T_CHECK_EQ(ret, 0);
	T_CHECK_EQ(info.created, 1);
	T_CHECK_EQ(info.is_block_device, 0);
	T_CHECK_EQ(info.size_bytes, MIB);
	T_CHECK(is_power_of_two(info.dio_mem_align) && is_power_of_two(info.dio_offset_align));
	T_CHECK_EQ(info.logical_block_size, info.dio_offset_align);
	T_CHECK(is_power_of_two(info.physical_block_size));
	T_CHECK(fcntl(fd, F_GETFL) & O_DIRECT);
	T_CHECK_EQ(stat(path, &before), 0);
	T_CHECK_EQ(before.st_size, MIB);
	T_CHECK(before.st_blocks * 512 >= MIB);

	/* The descriptor does O_DIRECT I/O: an aligned block written through it reads back. */
	T_CHECK_EQ(emu_mem_alloc(4096, -1, &block), 0);
	memset(block, 0x5a, 4096);
	T_CHECK_EQ(pwrite(fd, block, 4096, 8192), 4096);
	T_CHECK_EQ(emu_blockdev_close(fd), 0);
	T_CHECK_EQ(emu_blockdev_close(fd), -EBADF);
	fd = -1;

	/* Peek goes through the page cache: any offset and length, short at the end of the file. */
	T_CHECK_EQ(emu_blockdev_peek(path, 8192 + 10, peeked, sizeof(peeked), &got), 0);
	T_CHECK_EQ(got, sizeof(peeked));
	memset(pattern, 0x5a, sizeof(pattern));
	T_CHECK(!memcmp(peeked, pattern, sizeof(pattern)));
	T_CHECK_EQ(emu_blockdev_peek(path, MIB - 50, peeked, sizeof(peeked), &got), 0);
	T_CHECK_EQ(got, 50);
	T_CHECK_EQ(emu_blockdev_peek(path, 2 * MIB, peeked, sizeof(peeked), &got), 0);
	T_CHECK_EQ(got, 0);
	T_CHECK_EQ(emu_blockdev_peek(missing, 0, peeked, sizeof(peeked), &got), -ENOENT);
	T_CHECK_EQ(emu_blockdev_peek(dir, 0, peeked, sizeof(peeked), &got), -EISDIR);

	/* Reopen whatever size it is, and with a size it already has. */
	T_CHECK_EQ(emu_blockdev_open(path, 0, 0, &fd, &info), 0);
	T_CHECK_EQ(info.created, 0);
	T_CHECK_EQ(info.size_bytes, MIB);
	T_CHECK_EQ(emu_blockdev_close(fd), 0);
	T_CHECK_EQ(emu_blockdev_open(path, EMU_OPEN_CREATE, MIB / 2, &fd, &info), 0);
	T_CHECK_EQ(info.created, 0);
	T_CHECK_EQ(info.size_bytes, MIB);
	T_CHECK_EQ(emu_blockdev_close(fd), 0);
	fd = -1;

	/* Too small without EMU_OPEN_GROW: -EFBIG and the file is as it was, even with EMU_OPEN_CREATE. */
	T_CHECK_EQ(stat(path, &before), 0);
	T_CHECK_EQ(emu_blockdev_open(path, 0, 2 * MIB, &fd, &info), -EFBIG);
	T_CHECK_EQ(emu_blockdev_open(path, EMU_OPEN_CREATE, 2 * MIB, &fd, &info), -EFBIG);
	T_CHECK_EQ(fd, -1);
	T_CHECK_EQ(stat(path, &after), 0);
	T_CHECK_EQ(after.st_size, before.st_size);
	T_CHECK_EQ(after.st_blocks, before.st_blocks);
	T_CHECK_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	T_CHECK_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	T_CHECK_EQ(emu_blockdev_peek(path, 8192, peeked, sizeof(peeked), &got), 0);
	T_CHECK(!memcmp(peeked, pattern, sizeof(pattern)));

	/* EMU_OPEN_GROW extends it, keeping the data. */
	T_CHECK_EQ(emu_blockdev_open(path, EMU_OPEN_GROW, 2 * MIB, &fd, &info), 0);
	T_CHECK_EQ(info.created, 0);
	T_CHECK_EQ(info.size_bytes, 2 * MIB);
	T_CHECK_EQ(emu_blockdev_close(fd), 0);
	fd = -1;
	T_CHECK_EQ(stat(path, &after), 0);
	T_CHECK_EQ(after.st_size, 2 * MIB);
	T_CHECK_EQ(emu_blockdev_peek(path, 8192, peeked, sizeof(peeked), &got), 0);
	T_CHECK(!memcmp(peeked, pattern, sizeof(pattern)));

	/* Read-only: no writes through the descriptor, and no creating or growing. */
	T_CHECK_EQ(emu_blockdev_open(path, EMU_OPEN_READONLY, 0, &fd, &info), 0);
	T_CHECK_EQ(pwrite(fd, block, 4096, 0), -1);
	T_CHECK_EQ(errno, EBADF);
	T_CHECK_EQ(emu_blockdev_close(fd), 0);
	fd = -1;
	T_CHECK_EQ(emu_blockdev_open(path, EMU_OPEN_READONLY | EMU_OPEN_GROW, 4 * MIB, &fd, &info), -EINVAL);
	T_CHECK_EQ(emu_blockdev_open(missing, EMU_OPEN_READONLY | EMU_OPEN_CREATE, MIB, &fd, &info), -EINVAL);
	T_CHECK_EQ(access(missing, F_OK), -1);

	/* Directories, missing paths and bad arguments. */
	T_CHECK_EQ(emu_blockdev_open(dir, 0, 0, &fd, &info), -EISDIR);
	T_CHECK_EQ(emu_blockdev_open(dir, EMU_OPEN_READONLY, 0, &fd, &info), -EISDIR);
	T_CHECK_EQ(emu_blockdev_open(dir, EMU_OPEN_CREATE, MIB, &fd, &info), -EISDIR);
	T_CHECK_EQ(emu_blockdev_open(missing, 0, MIB, &fd, &info), -ENOENT);
	T_CHECK_EQ(access(missing, F_OK), -1);
	T_CHECK_EQ(emu_blockdev_open(orphan, EMU_OPEN_CREATE, MIB, &fd, &info), -ENOENT);
	T_CHECK_EQ(emu_blockdev_open(path, 0x80, 0, &fd, &info), -EINVAL);
	T_CHECK_EQ(emu_blockdev_open(NULL, 0, 0, &fd, &info), -EINVAL);
	T_CHECK_EQ(emu_blockdev_open(path, 0, 0, NULL, &info), -EINVAL);
	T_CHECK_EQ(fd, -1);

	/* info is optional. */
	T_CHECK_EQ(emu_blockdev_open(path, 0, 0, &fd2, NULL), 0);
	T_CHECK(fd2 >= 0);
	T_CHECK_EQ(emu_blockdev_close(fd2), 0);
	fd2 = -1;
	status = T_EXIT_PASS;
err:
	if (block)
		emu_mem_free(block, 4096);
	if (fd >= 0)
		emu_blockdev_close(fd);
	if (fd2 >= 0)
		emu_blockdev_close(fd2);
	t_remove_tree(dir);
	return status;
}
