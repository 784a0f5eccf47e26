/* SPDX-License-Identifier: MIT */
/*
 * Description: emu_topology_open returns -ENOENT when EMU_SYSFS_ROOT names a root without
 * sys/devices/system/cpu (a missing path, an empty directory, a regular file) and opens nothing.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

static int open_at(const char *root)
{
	emu_topology *topo = NULL;
	int ret;

	setenv("EMU_SYSFS_ROOT", root, 1);
	ret = emu_topology_open(NULL, &topo);
	if (!ret)
		emu_topology_close(topo);
	return ret;
}

int main(void)
{
	char dir[PATH_MAX / 2], file[PATH_MAX], missing[PATH_MAX];
	int status = T_EXIT_FAIL;

	t_scratch_path(dir, sizeof(dir), "noroot");
	snprintf(file, sizeof(file), "%s/file", dir);
	snprintf(missing, sizeof(missing), "%s/does/not/exist", dir);
	T_CHECK_EQ(t_mkdirs(dir), 0);
	T_CHECK_EQ(t_write_file(file, "not a directory\n"), 0);

	T_CHECK_EQ(open_at(missing), -ENOENT);
	T_CHECK_EQ(open_at(dir), -ENOENT);
	T_CHECK_EQ(open_at(file), -ENOENT);
	status = T_EXIT_PASS;
err:
	t_remove_tree(dir);
	return status;
}
