/* SPDX-License-Identifier: MIT */
/*
 * affinity.c - pinning the calling thread, the user-space side of kernel/sched/core.c's
 * sched_setaffinity(2) / sched_getaffinity(2).
 *
 * emu_cpuset and glibc's cpu_set_t both hold 1024 CPUs, but the shim converts bit by bit with
 * CPU_SET/CPU_ISSET rather than casting, so neither layout depends on the other.
 */
#include <sched.h>
#include <string.h>

#include "internal.h"

_Static_assert(EMU_MAX_CPUS <= CPU_SETSIZE, "emu_cpuset must fit in a cpu_set_t");
_Static_assert(EMU_CPUSET_WORDS * 64 == EMU_MAX_CPUS, "emu_cpuset words must cover EMU_MAX_CPUS");

/* Pins the calling thread (pthread_setaffinity_np(3), i.e. sched_setaffinity(2)). */
EMU_EXPORT int32_t emu_affinity_set_current(const emu_cpuset *set)
{
	cpu_set_t mask;
	int any = 0;

	if (!set)
		return -EINVAL;
	CPU_ZERO(&mask);
	for (int cpu = 0; cpu < EMU_MAX_CPUS; cpu++) {
		if ((set->bits[cpu / 64] >> (cpu % 64)) & 1) {
			CPU_SET(cpu, &mask);
			any = 1;
		}
	}
	if (!any)
		return -EINVAL;
	return -pthread_setaffinity_np(pthread_self(), sizeof(mask), &mask);
}

/* Reads the calling thread's CPU set (pthread_getaffinity_np(3), i.e. sched_getaffinity(2)). */
EMU_EXPORT int32_t emu_affinity_get_current(emu_cpuset *set)
{
	cpu_set_t mask;
	int ret;

	if (!set)
		return -EINVAL;
	ret = pthread_getaffinity_np(pthread_self(), sizeof(mask), &mask);
	if (ret)
		return -ret;
	memset(set, 0, sizeof(*set));
	for (int cpu = 0; cpu < EMU_MAX_CPUS; cpu++)
		if (CPU_ISSET(cpu, &mask))
			set->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
	return 0;
}

/* The calling thread's kernel thread id (gettid(2)). */
EMU_EXPORT int32_t emu_thread_id(int32_t *tid)
{
	if (!tid)
		return -EINVAL;
	*tid = (int32_t)gettid();
	return 0;
}
