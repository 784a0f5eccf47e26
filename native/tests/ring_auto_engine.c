/* SPDX-License-Identifier: MIT */
/*
 * Description: EMU_ENGINE_AUTO picks io_uring when io_uring_setup(2) works and io_uring_disabled
 * is 0, and falls back to psync, saying why in fallback_errno, when a seccomp filter makes
 * io_uring_setup fail with ENOSYS or EPERM (run in forked children); an explicit
 * EMU_ENGINE_IO_URING then fails with that error instead. Bad parameters are -EINVAL.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#if defined(__x86_64__)
#define T_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define T_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* What the machine answers without the shim: 0 when io_uring works, else the errno. */
static int probe_io_uring(void)
{
	struct io_uring_params p;
	char *disabled = t_read_file("/proc/sys/kernel/io_uring_disabled");
	int fd, off = !disabled || atoi(disabled) == 0;

	free(disabled);
	if (!off)
		return EPERM;
	memset(&p, 0, sizeof(p));
	fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int create(int32_t engine, uint32_t entries, emu_ring_params *params, emu_ring **ring)
{
	memset(params, 0, sizeof(*params));
	params->entries = entries;
	params->engine = engine;
	return emu_ring_create(params, ring);
}

/* One NOP through the ring: it works whichever engine was chosen. */
static int nop_round_trip(emu_ring *ring)
{
	emu_io io = { .user_data = 42, .op = EMU_OP_NOP };
	emu_completion cqe;
	uint32_t n = 0, got = 0;

	if (emu_ring_submit(ring, &io, 1, &n) || n != 1)
		return -1;
	if (emu_ring_reap(ring, &cqe, 1, 1, 5000000000LL, &got) || got != 1)
		return -1;
	return cqe.user_data == 42 && cqe.res == 0 ? 0 : -1;
}

#ifdef T_AUDIT_ARCH
/* Child: io_uring_setup(2) fails with err from now on; AUTO must fall back. Exit status is T_EXIT_*. */
static int child_with_seccomp(int err)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, T_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };
	emu_ring_params params;
	emu_ring *ring = NULL;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return T_EXIT_SKIP;
	T_CHECK_EQ(probe_io_uring(), err);

	T_CHECK_EQ(create(EMU_ENGINE_AUTO, 16, &params, &ring), 0);
	T_CHECK_EQ(params.engine_out, EMU_ENGINE_PSYNC);
	T_CHECK_EQ(params.fallback_errno, err);
	T_CHECK_EQ(params.entries, 16);
	T_CHECK_EQ(nop_round_trip(ring), 0);
	T_CHECK_EQ(emu_ring_destroy(ring), 0);
	ring = NULL;

	T_CHECK_EQ(create(EMU_ENGINE_IO_URING, 16, &params, &ring), -err);
	T_CHECK_EQ(create(EMU_ENGINE_PSYNC, 16, &params, &ring), 0);
	T_CHECK_EQ(params.engine_out, EMU_ENGINE_PSYNC);
	T_CHECK_EQ(params.fallback_errno, 0);
	T_CHECK_EQ(emu_ring_destroy(ring), 0);
	return T_EXIT_PASS;
err:
	if (ring)
		emu_ring_destroy(ring);
	return T_EXIT_FAIL;
}

static int run_child(int err)
{
	int wstatus;
	pid_t pid = fork();

	if (pid == 0)
		_exit(child_with_seccomp(err));
	if (pid < 0 || waitpid(pid, &wstatus, 0) != pid || !WIFEXITED(wstatus))
		return T_EXIT_FAIL;
	return WEXITSTATUS(wstatus);
}
#endif

int main(void)
{
	emu_ring_params params;
	emu_ring *ring = NULL;
	int machine = probe_io_uring();
	int status = T_EXIT_FAIL;

	T_CHECK_EQ(create(EMU_ENGINE_AUTO, 5, &params, &ring), 0);
	printf("AUTO chose %s (fallback_errno %d); io_uring_setup here: %s\n",
	       params.engine_out == EMU_ENGINE_IO_URING ? "io_uring" : "psync", params.fallback_errno,
	       machine ? strerror(machine) : "works");
	T_CHECK_EQ(params.entries, 8);
	if (machine == 0) {
		T_CHECK_EQ(params.engine_out, EMU_ENGINE_IO_URING);
		T_CHECK_EQ(params.fallback_errno, 0);
	} else if (machine == ENOSYS || machine == EPERM) {
		T_CHECK_EQ(params.engine_out, EMU_ENGINE_PSYNC);
		T_CHECK_EQ(params.fallback_errno, machine);
	}
	T_CHECK_EQ(nop_round_trip(ring), 0);
	T_CHECK_EQ(emu_ring_destroy(ring), 0);
	ring = NULL;

	T_CHECK_EQ(create(EMU_ENGINE_AUTO, 0, &params, &ring), -EINVAL);
	T_CHECK_EQ(create(EMU_ENGINE_AUTO, 32769, &params, &ring), -EINVAL);
	T_CHECK_EQ(create(7, 8, &params, &ring), -EINVAL);
	T_CHECK_EQ(emu_ring_create(NULL, &ring), -EINVAL);
	T_CHECK_EQ(emu_ring_destroy(NULL), -EINVAL);

#ifdef T_AUDIT_ARCH
	for (int i = 0; i < 2; i++) {
		int err = i ? EPERM : ENOSYS;
		int ret = run_child(err);

		if (ret == T_EXIT_SKIP) {
			status = t_skip("cannot install a seccomp filter here");
			goto err;
		}
		printf("io_uring_setup failing with %s: AUTO -> psync %s\n", strerror(err),
		       ret == T_EXIT_PASS ? "ok" : "FAIL");
		T_CHECK_EQ(ret, T_EXIT_PASS);
	}
	status = T_EXIT_PASS;
#else
	status = t_skip("no seccomp audit arch for this CPU: fallback not checked");
#endif
err:
	if (ring)
		emu_ring_destroy(ring);
	return status;
}
