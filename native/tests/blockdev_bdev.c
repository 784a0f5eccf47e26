/* SPDX-License-Identifier: MIT */
/*
 * Description: emu_blockdev_open of a real block device (read-only, the disk under the build
 * directory) reports is_block_device and the sizes sysfs publishes for it (BLKGETSIZE64,
 * BLKSSZGET, BLKPBSZGET), and -EFBIG when asked for more than the device holds. Skips when the
 * device node cannot be opened (no such node, no permission).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "helpers.h"

/* A number from /sys/dev/block/MAJ:MIN/<rel>, or from its parent disk for a partition. */
static long long sysfs_number(const char *dev, const char *rel)
{
	char path[PATH_MAX];
	char *text;
	long long v;

	snprintf(path, sizeof(path), "/sys/dev/block/%s/%s", dev, rel);
	text = t_read_file(path);
	if (!text) {
		snprintf(path, sizeof(path), "/sys/dev/block/%s/../%s", dev, rel);
		text = t_read_file(path);
	}
	if (!text)
		return -1;
	v = strtoll(text, NULL, 10);
	free(text);
	return v;
}

int main(void)
{
	char dev[32], uevent[PATH_MAX], node[PATH_MAX];
	emu_blockdev_info info;
	struct stat st;
	char *text = NULL, *name;
	int32_t fd = -1;
	int status = T_EXIT_FAIL;
	int ret;

	T_CHECK_EQ(stat(EMU_SCRATCH_DIR, &st), 0);
	snprintf(dev, sizeof(dev), "%u:%u", major(st.st_dev), minor(st.st_dev));
	snprintf(uevent, sizeof(uevent), "/sys/dev/block/%s/uevent", dev);
	text = t_read_file(uevent);
	if (!text || !(name = strstr(text, "DEVNAME="))) {
		status = t_skip("the build directory is not on a block device");
		goto err;
	}
	name += strlen("DEVNAME=");
	name[strcspn(name, "\n")] = '\0';
	snprintf(node, sizeof(node), "/dev/%s", name);

	ret = emu_blockdev_open(node, EMU_OPEN_READONLY, 0, &fd, &info);
	if (ret == -ENOENT || ret == -EACCES || ret == -EPERM) {
		fprintf(stdout, "%s: %s\n", node, strerror(-ret));
		status = t_skip("cannot open the block device node");
		goto err;
	}
	T_CHECK_EQ(ret, 0);
	printf("%s: %llu bytes, logical %u, physical %u, dio mem %u offset %u\n", node,
	       (unsigned long long)info.size_bytes, info.logical_block_size, info.physical_block_size,
	       info.dio_mem_align, info.dio_offset_align);
	T_CHECK_EQ(info.is_block_device, 1);
	T_CHECK_EQ(info.created, 0);
	T_CHECK_EQ(info.size_bytes, sysfs_number(dev, "size") * 512);
	T_CHECK_EQ(info.logical_block_size, sysfs_number(dev, "queue/logical_block_size"));
	T_CHECK_EQ(info.physical_block_size, sysfs_number(dev, "queue/physical_block_size"));
	T_CHECK(info.dio_offset_align >= 512 && info.dio_mem_align >= 1);
	T_CHECK_EQ(emu_blockdev_close(fd), 0);
	fd = -1;

	T_CHECK_EQ(emu_blockdev_open(node, EMU_OPEN_READONLY, info.size_bytes + 4096, &fd, &info), -EFBIG);
	T_CHECK_EQ(fd, -1);
	status = T_EXIT_PASS;
err:
	if (fd >= 0)
		emu_blockdev_close(fd);
	free(text);
	return status;
}
