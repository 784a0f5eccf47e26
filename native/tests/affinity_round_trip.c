/* SPDX-License-Identifier: MIT */
/*
 * Description: emu_affinity_set_current pins the calling thread to exactly the set given (read
 * back with emu_affinity_get_current and sched_getcpu), refuses an empty set or one naming no
 * usable CPU with -EINVAL, and emu_thread_id is the kernel tid of each thread.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"

struct thread_ids {
	int32_t shim;
	int32_t kernel;
	int ret;
};

static void *report_tid(void *arg)
{
	struct thread_ids *ids = arg;

	ids->ret = emu_thread_id(&ids->shim);
	ids->kernel = (int32_t)syscall(SYS_gettid);
	return NULL;
}

int main(void)
{
	emu_cpuset original, one, got, empty, bogus;
	struct thread_ids ids = { 0 };
	pthread_t thread;
	int32_t tid = 0;
	int status = T_EXIT_FAIL;
	int saved = 0, last = -1;

	T_CHECK_EQ(emu_affinity_get_current(&original), 0);
	saved = 1;
	T_CHECK(t_cpuset_count(&original) >= 1);

	/* Pin to each allowed CPU in turn: the set reads back exactly and the thread runs there. */
	for (int cpu = 0; cpu < EMU_MAX_CPUS; cpu++) {
		if (!t_cpuset_has(&original, cpu))
			continue;
		memset(&one, 0, sizeof(one));
		t_cpuset_add(&one, cpu);
		T_CHECK_EQ(emu_affinity_set_current(&one), 0);
		T_CHECK_EQ(emu_affinity_get_current(&got), 0);
		T_CHECK(!memcmp(&got, &one, sizeof(one)));
		T_CHECK_EQ(sched_getcpu(), cpu);
		last = cpu;
	}
	T_CHECK(last >= 0);

	memset(&empty, 0, sizeof(empty));
	T_CHECK_EQ(emu_affinity_set_current(&empty), -EINVAL);
	/* A CPU that is not online: the kernel finds no CPU to run on. */
	memset(&bogus, 0, sizeof(bogus));
	t_cpuset_add(&bogus, EMU_MAX_CPUS - 1);
	if (sysconf(_SC_NPROCESSORS_CONF) < EMU_MAX_CPUS)
		T_CHECK_EQ(emu_affinity_set_current(&bogus), -EINVAL);
	T_CHECK_EQ(emu_affinity_get_current(&got), 0);
	T_CHECK_EQ(t_cpuset_count(&got), 1);
	T_CHECK(t_cpuset_has(&got, last));
	T_CHECK_EQ(emu_affinity_set_current(NULL), -EINVAL);
	T_CHECK_EQ(emu_affinity_get_current(NULL), -EINVAL);

	T_CHECK_EQ(emu_affinity_set_current(&original), 0);
	T_CHECK_EQ(emu_affinity_get_current(&got), 0);
	T_CHECK(!memcmp(&got, &original, sizeof(got)));

	/* The main thread's tid is the pid; another thread has its own. */
	T_CHECK_EQ(emu_thread_id(&tid), 0);
	T_CHECK_EQ(tid, getpid());
	T_CHECK_EQ(pthread_create(&thread, NULL, report_tid, &ids), 0);
	pthread_join(thread, NULL);
	T_CHECK_EQ(ids.ret, 0);
	T_CHECK_EQ(ids.shim, ids.kernel);
	T_CHECK(ids.shim != tid);
	T_CHECK_EQ(emu_thread_id(NULL), -EINVAL);
	status = T_EXIT_PASS;
err:
	if (saved)
		emu_affinity_set_current(&original);
	return status;
}
