/* SPDX-License-Identifier: MIT */
/*
 * memory.c - 4 KiB-aligned, zeroed memory for page-cache pages and DIO buffers, placed on a NUMA
 * node when the machine has several (libnuma: numa_alloc_onnode(3), an mmap(2) + mbind(2)).
 *
 * Which allocator serves a block is decided once per process, from how many nodes libnuma sees,
 * so emu_mem_free knows how to release a pointer from its size alone: with several nodes every
 * block comes from libnuma (numa_alloc_onnode for a node, numa_alloc for "anywhere"), with one
 * node every block comes from aligned_alloc(3).
 *
 * libnuma is loaded with dlopen(3) rather than linked: the published tarball then runs on servers
 * without libnuma installed (as one node), and liburing can be linked in statically beside it.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <numa.h>

#include "internal.h"

/* The libnuma entry points used here; I: set once by probe_nodes. */
static struct {
	__typeof__(&numa_available) available;
	__typeof__(&numa_num_configured_nodes) num_configured_nodes;
	__typeof__(&numa_max_node) max_node;
	__typeof__(&numa_node_size64) node_size64;
	__typeof__(&numa_alloc_onnode) alloc_onnode;
	__typeof__(&numa_alloc) alloc;
	__typeof__(&numa_free) free;
} s_numa;

static pthread_once_t s_nodes_once = PTHREAD_ONCE_INIT;
static int32_t s_node_count = 1;  /* I: set once by probe_nodes */

/* dlopen(3) libnuma.so.1 and dlsym(3) what memory.c calls; one node when any of it is missing. */
static void probe_nodes(void)
{
	void *lib = dlopen("libnuma.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!lib)
		return;
	s_numa.available = (__typeof__(s_numa.available))dlsym(lib, "numa_available");
	s_numa.num_configured_nodes = (__typeof__(s_numa.num_configured_nodes))dlsym(lib, "numa_num_configured_nodes");
	s_numa.max_node = (__typeof__(s_numa.max_node))dlsym(lib, "numa_max_node");
	s_numa.node_size64 = (__typeof__(s_numa.node_size64))dlsym(lib, "numa_node_size64");
	s_numa.alloc_onnode = (__typeof__(s_numa.alloc_onnode))dlsym(lib, "numa_alloc_onnode");
	s_numa.alloc = (__typeof__(s_numa.alloc))dlsym(lib, "numa_alloc");
	s_numa.free = (__typeof__(s_numa.free))dlsym(lib, "numa_free");
	if (!s_numa.available || !s_numa.num_configured_nodes || !s_numa.max_node || !s_numa.node_size64 ||
	    !s_numa.alloc_onnode || !s_numa.alloc || !s_numa.free)
		return;
	if (s_numa.available() >= 0 && s_numa.num_configured_nodes() > 1)
		s_node_count = s_numa.num_configured_nodes();
}

static int32_t node_count(void)
{
	pthread_once(&s_nodes_once, probe_nodes);
	return s_node_count;
}

static int round_size(uint64_t size, size_t *rounded)
{
	if (size == 0 || size > SIZE_MAX - (EMU_PAGE_SIZE - 1))
		return -EINVAL;
	*rounded = (size_t)((size + EMU_PAGE_SIZE - 1) & ~(uint64_t)(EMU_PAGE_SIZE - 1));
	return 0;
}

/*
 * numa_alloc_onnode(3) on a node with memory, numa_alloc(3) for node < 0, when libnuma sees
 * several nodes; aligned_alloc(3) + memset otherwise. -EINVAL for size 0 or, on a multi-node
 * machine, a node without memory (libnuma would print a warning and bind nowhere).
 */
EMU_EXPORT int32_t emu_mem_alloc(uint64_t size, int32_t node, void **out)
{
	size_t rounded;
	void *p;
	int ret;

	if (!out)
		return -EINVAL;
	ret = round_size(size, &rounded);
	if (ret)
		return ret;

	if (node_count() > 1) {
		if (node >= 0) {
			if (node > s_numa.max_node() || s_numa.node_size64(node, NULL) <= 0)
				return -EINVAL;
			p = s_numa.alloc_onnode(rounded, node);
		} else {
			p = s_numa.alloc(rounded);
		}
		/* Both are fresh anonymous mappings: page-aligned and already zero. */
		if (!p)
			return -ENOMEM;
	} else {
		p = aligned_alloc(EMU_PAGE_SIZE, rounded);
		if (!p)
			return -ENOMEM;
		memset(p, 0, rounded);
	}
	*out = p;
	return 0;
}

/* numa_free(3) or free(3), matching emu_mem_alloc. */
EMU_EXPORT int32_t emu_mem_free(void *ptr, uint64_t size)
{
	size_t rounded;
	int ret;

	if (!ptr)
		return -EINVAL;
	ret = round_size(size, &rounded);
	if (ret)
		return ret;
	if (node_count() > 1)
		s_numa.free(ptr, rounded);
	else
		free(ptr);
	return 0;
}

/* Nodes libnuma sees (numa_available(3), numa_num_configured_nodes(3)); 1 without NUMA support. */
EMU_EXPORT int32_t emu_mem_node_count(int32_t *count)
{
	if (!count)
		return -EINVAL;
	*count = node_count();
	return 0;
}
