/* SPDX-License-Identifier: MIT */
/*
 * Description: emu_mem_alloc returns 4 KiB-aligned, zeroed, writable blocks rounded up to 4 KiB,
 * with and without a node, that emu_mem_free releases; size 0 and NULL pointers are -EINVAL, and
 * emu_mem_node_count agrees with the node directories in sysfs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Nodes with memory, as sysfs lists them; 1 without a node directory. */
static int sysfs_memory_nodes(void)
{
	char *has_memory = t_read_file("/sys/devices/system/node/has_memory");
	int count = 0;

	if (!has_memory)
		return 1;
	/* The list is short here ("0" or "0-7"): count by expanding it. */
	for (char *p = has_memory; *p && *p != '\n';) {
		long lo = strtol(p, &p, 10), hi = lo;

		if (*p == '-')
			hi = strtol(p + 1, &p, 10);
		count += (int)(hi - lo + 1);
		if (*p == ',')
			p++;
	}
	free(has_memory);
	return count ? count : 1;
}

static int check_block(uint64_t size, int32_t node)
{
	uint64_t rounded = (size + 4095) & ~UINT64_C(4095);
	unsigned char *p = NULL;

	T_CHECK_EQ(emu_mem_alloc(size, node, (void **)&p), 0);
	T_CHECK(p != NULL);
	T_CHECK_EQ((uintptr_t)p % 4096, 0);
	for (uint64_t i = 0; i < rounded; i++)
		if (p[i]) {
			fprintf(stderr, "byte %llu of a %llu-byte block is %u\n", (unsigned long long)i,
				(unsigned long long)size, p[i]);
			goto err;
		}
	/* Dirty the whole rounded block so a later allocation reusing it must zero it again. */
	memset(p, 0xa5, rounded);
	T_CHECK_EQ(emu_mem_free(p, size), 0);
	return 0;
err:
	if (p)
		emu_mem_free(p, size);
	return -1;
}

int main(void)
{
	static const uint64_t sizes[] = { 1, 4096, 4097, 12288, 1 << 20 };
	int32_t nodes = 0;
	void *p = NULL;
	int status = T_EXIT_FAIL;

	T_CHECK_EQ(emu_mem_node_count(&nodes), 0);
	T_CHECK_EQ(nodes, sysfs_memory_nodes());
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			T_CHECK_EQ(check_block(sizes[i], -1), 0);
			T_CHECK_EQ(check_block(sizes[i], 0), 0);
			T_CHECK_EQ(check_block(sizes[i], nodes - 1), 0);
		}

	T_CHECK_EQ(emu_mem_alloc(0, -1, &p), -EINVAL);
	T_CHECK_EQ(emu_mem_alloc(4096, -1, NULL), -EINVAL);
	T_CHECK_EQ(emu_mem_alloc(UINT64_MAX, -1, &p), -EINVAL);
	T_CHECK_EQ(emu_mem_free(NULL, 4096), -EINVAL);
	T_CHECK_EQ(emu_mem_node_count(NULL), -EINVAL);
	/* With several nodes, a node that does not exist is refused rather than left unbound. */
	if (nodes > 1)
		T_CHECK_EQ(emu_mem_alloc(4096, 4096, &p), -EINVAL);
	status = T_EXIT_PASS;
err:
	return status;
}
