/* SPDX-License-Identifier: MIT */
/*
 * blockdev.c - the backing store of an emulated block device: a regular file or a real block
 * device opened with O_DIRECT, and what its alignment rules are.
 *
 * An error leaves the filesystem as it was: an existing file is opened without O_CREAT and only
 * grown (fallocate(2)) when asked to; a new file is created with O_CREAT|O_EXCL, so this call
 * knows it made it, and is unlinked again when anything after that fails, including the
 * filesystem refusing O_DIRECT (ramfs; tmpfs before Linux 6.6).
 */
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>

#include "internal.h"

/*
 * struct statx as include/uapi/linux/stat.h lays it out since Linux 6.1 (stx_dio_*); glibc 2.36
 * does not have those fields, so the shim calls statx(2) with its own copy.
 */
struct emu_statx {
	uint32_t stx_mask;
	uint32_t stx_blksize;
	uint64_t head[18];                /* stx_attributes .. stx_dev_minor, stx_mnt_id */
	uint32_t stx_dio_mem_align;
	uint32_t stx_dio_offset_align;
	uint64_t spare[12];
};
_Static_assert(sizeof(struct emu_statx) == 256, "struct statx is 256 bytes");
_Static_assert(offsetof(struct emu_statx, stx_dio_mem_align) == 152, "stx_dio_mem_align at 0x98");

#define EMU_STATX_DIOALIGN 0x00002000u    /* STATX_DIOALIGN */
#define EMU_DIO_ALIGN_UNKNOWN 512u

#define EMU_OPEN_ALL (EMU_OPEN_CREATE | EMU_OPEN_READONLY | EMU_OPEN_GROW | EMU_OPEN_BUFFERED)

/* statx(2) with STATX_DIOALIGN; filesystems that do not report it keep the 512-byte default. */
static void describe_dio(int fd, emu_blockdev_info *info)
{
	struct emu_statx stx;

	info->dio_mem_align = EMU_DIO_ALIGN_UNKNOWN;
	info->dio_offset_align = EMU_DIO_ALIGN_UNKNOWN;
	memset(&stx, 0, sizeof(stx));
	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, EMU_STATX_DIOALIGN, &stx))
		return;
	if (!(stx.stx_mask & EMU_STATX_DIOALIGN) || !stx.stx_dio_mem_align || !stx.stx_dio_offset_align)
		return;
	info->dio_mem_align = stx.stx_dio_mem_align;
	info->dio_offset_align = stx.stx_dio_offset_align;
}

/* BLKGETSIZE64, BLKSSZGET, BLKPBSZGET (ioctl(2)). */
static int describe_bdev(int fd, emu_blockdev_info *info)
{
	uint64_t bytes;
	int logical;
	unsigned int physical;

	if (ioctl(fd, BLKGETSIZE64, &bytes) || ioctl(fd, BLKSSZGET, &logical) || ioctl(fd, BLKPBSZGET, &physical))
		return -errno;
	info->size_bytes = bytes;
	info->logical_block_size = (uint32_t)logical;
	info->physical_block_size = physical;
	return 0;
}

/* fallocate(2) to size; a filesystem without it (EOPNOTSUPP) gets a sparse ftruncate(2). */
static int extend_file(int fd, uint64_t size)
{
	if (size > INT64_MAX)
		return -EFBIG;
	if (!fallocate(fd, 0, 0, (off_t)size))
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	return ftruncate(fd, (off_t)size) ? -errno : 0;
}

/*
 * The error of a failed open(2), errno set. A directory opened O_RDONLY|O_DIRECT fails with
 * EINVAL (directories cannot do O_DIRECT), which the contract reports as -EISDIR.
 */
static int open_error(const char *path)
{
	int err = errno;
	struct stat st;

	if (err == EINVAL && !stat(path, &st) && S_ISDIR(st.st_mode))
		return -EISDIR;
	return -err;
}

/*
 * Opens path with O_DIRECT (open(2)) and describes it (fstat(2), statx(2), ioctl(2)); see
 * emu_shim.h for the error contract. Other file types (character devices, FIFOs) are -ENOTBLK.
 */
EMU_EXPORT int32_t emu_blockdev_open(const char *path, uint32_t flags, uint64_t size, int32_t *fd_out,
				     emu_blockdev_info *info)
{
	int direct = (flags & EMU_OPEN_BUFFERED) ? 0 : O_DIRECT;
	int mode = ((flags & EMU_OPEN_READONLY) ? O_RDONLY : O_RDWR) | direct;
	emu_blockdev_info out;
	struct statfs sfs;
	struct stat st;
	int created = 0;
	int fd, ret;

	if (!path || !fd_out || (flags & ~(uint32_t)EMU_OPEN_ALL))
		return -EINVAL;
	/* Creating or growing writes to the file, which a read-only descriptor cannot. */
	if ((flags & EMU_OPEN_READONLY) && (flags & (EMU_OPEN_CREATE | EMU_OPEN_GROW)))
		return -EINVAL;

	fd = open(path, mode | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && (flags & EMU_OPEN_CREATE)) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | direct | O_CLOEXEC, 0644);
		if (fd >= 0) {
			created = 1;
		} else if (errno == EINVAL) {
			/*
			 * A filesystem that refuses O_DIRECT (ramfs) does so in do_dentry_open(), after the
			 * inode was created; O_EXCL says the file is this call's, so it goes again.
			 */
			unlink(path);
			return -EINVAL;
		} else if (errno == EEXIST) {
			/* Someone created it between the two opens: use theirs like any existing file. */
			fd = open(path, mode | O_CLOEXEC);
		}
	}
	if (fd < 0)
		return open_error(path);

	memset(&out, 0, sizeof(out));
	if (fstat(fd, &st)) {
		ret = -errno;
		goto err;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		goto err;
	}
	if (S_ISBLK(st.st_mode)) {
		out.is_block_device = 1;
		ret = describe_bdev(fd, &out);
		if (ret)
			goto err;
		if (size && out.size_bytes < size) {
			ret = -EFBIG;
			goto err;
		}
	} else if (S_ISREG(st.st_mode)) {
		if (size && (uint64_t)st.st_size < size) {
			if (!created && !(flags & EMU_OPEN_GROW)) {
				ret = -EFBIG;
				goto err;
			}
			ret = extend_file(fd, size);
			if (ret)
				goto err;
			if (fstat(fd, &st)) {
				ret = -errno;
				goto err;
			}
		}
		out.size_bytes = (uint64_t)st.st_size;
		out.physical_block_size = (uint32_t)st.st_blksize;
	} else {
		ret = -ENOTBLK;
		goto err;
	}

	if (fstatfs(fd, &sfs)) {
		ret = -errno;
		goto err;
	}
	out.fs_magic = (uint64_t)sfs.f_type;
	describe_dio(fd, &out);
	if (!out.is_block_device)
		out.logical_block_size = out.dio_offset_align;
	out.created = created;
	if (info)
		*info = out;
	*fd_out = fd;
	return 0;
err:
	close(fd);
	if (created)
		unlink(path);
	return ret;
}

/* close(2). */
EMU_EXPORT int32_t emu_blockdev_close(int32_t fd)
{
	if (close(fd) && errno != EINTR)
		return -errno;
	return 0;
}

/* pread(2) on a fresh O_RDONLY descriptor, without O_DIRECT, until len bytes or end of file. */
EMU_EXPORT int32_t emu_blockdev_peek(const char *path, uint64_t offset, void *buf, uint32_t len, uint32_t *got)
{
	uint32_t done = 0;
	int fd, ret = 0;

	if (!path || (!buf && len) || !got || offset > INT64_MAX)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(offset + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		done += (uint32_t)n;
	}
	close(fd);
	if (ret)
		return ret;
	*got = done;
	return 0;
}
