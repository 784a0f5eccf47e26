/* SPDX-License-Identifier: MIT */
/*
 * Description: on a filesystem that refuses O_DIRECT, emu_blockdev_open returns -EINVAL and
 * leaves nothing behind: a file it was asked to create is removed again (the kernel creates the
 * inode before do_dentry_open() refuses O_DIRECT), an existing file stays. Checked on /dev/shm when
 * it is a tmpfs that refuses O_DIRECT (before Linux 6.6), and on a ramfs mounted in a private
 * mount namespace (needs CAP_SYS_ADMIN). Skips when neither is available.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define TMPFS_MAGIC 0x01021994
#define RAMFS_MAGIC 0x858458f6

/* 1 when a plain open(2) with O_DIRECT of a new file in dir fails with EINVAL. */
static int refuses_odirect(const char *dir)
{
	char probe[PATH_MAX];
	int fd;

	snprintf(probe, sizeof(probe), "%s/probe-%d", dir, (int)getpid());
	fd = open(probe, O_RDWR | O_CREAT | O_EXCL | O_DIRECT, 0644);
	if (fd >= 0)
		close(fd);
	unlink(probe);
	return fd < 0 && errno == EINVAL;
}

/* The behaviour under test, in dir. T_EXIT_PASS or T_EXIT_FAIL. */
static int check_dir(const char *dir)
{
	char created[PATH_MAX], existing[PATH_MAX];
	emu_blockdev_info info;
	struct stat st;
	int32_t fd = -1;

	snprintf(created, sizeof(created), "%s/t-created-%d", dir, (int)getpid());
	snprintf(existing, sizeof(existing), "%s/t-existing-%d", dir, (int)getpid());

	T_CHECK_EQ(emu_blockdev_open(created, EMU_OPEN_CREATE, 1 << 20, &fd, &info), -EINVAL);
	T_CHECK_EQ(access(created, F_OK), -1);
	T_CHECK_EQ(errno, ENOENT);

	T_CHECK_EQ(t_write_file(existing, "keep me\n"), 0);
	T_CHECK_EQ(emu_blockdev_open(existing, EMU_OPEN_CREATE, 0, &fd, &info), -EINVAL);
	T_CHECK_EQ(emu_blockdev_open(existing, EMU_OPEN_GROW, 1 << 20, &fd, &info), -EINVAL);
	T_CHECK_EQ(stat(existing, &st), 0);
	T_CHECK_EQ(st.st_size, 8);
	T_CHECK_EQ(fd, -1);
	unlink(existing);
	return T_EXIT_PASS;
err:
	unlink(created);
	unlink(existing);
	return T_EXIT_FAIL;
}

/* In a child with its own mount namespace: ramfs on a scratch directory. */
static int check_ramfs(void)
{
	char dir[PATH_MAX];
	int wstatus;
	pid_t pid;

	t_scratch_path(dir, sizeof(dir), "ramfs");
	if (mkdir(dir, 0755))
		return T_EXIT_FAIL;
	pid = fork();
	if (pid == 0) {
		struct statfs sfs;
		int status;

		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("emu-test", dir, "ramfs", 0, NULL))
			_exit(T_EXIT_SKIP);
		if (statfs(dir, &sfs) || sfs.f_type != RAMFS_MAGIC || !refuses_odirect(dir))
			_exit(T_EXIT_SKIP);
		status = check_dir(dir);
		umount(dir);
		_exit(status);
	}
	if (pid < 0 || waitpid(pid, &wstatus, 0) != pid || !WIFEXITED(wstatus)) {
		rmdir(dir);
		return T_EXIT_FAIL;
	}
	rmdir(dir);
	return WEXITSTATUS(wstatus);
}

int main(void)
{
	struct statfs sfs;
	int checked = 0, ret;

	if (!statfs("/dev/shm", &sfs) && sfs.f_type == TMPFS_MAGIC && refuses_odirect("/dev/shm")) {
		if (check_dir("/dev/shm") != T_EXIT_PASS)
			return T_EXIT_FAIL;
		printf("tmpfs /dev/shm: ok\n");
		checked++;
	} else {
		printf("/dev/shm: not a tmpfs that refuses O_DIRECT (tmpfs supports it since Linux 6.6)\n");
	}

	ret = check_ramfs();
	if (ret == T_EXIT_FAIL)
		return T_EXIT_FAIL;
	if (ret == T_EXIT_PASS) {
		printf("ramfs in a private mount namespace: ok\n");
		checked++;
	} else {
		printf("ramfs: cannot mount one here (needs CAP_SYS_ADMIN)\n");
	}

	if (!checked)
		return t_skip("no filesystem that refuses O_DIRECT is available");
	return T_EXIT_PASS;
}
