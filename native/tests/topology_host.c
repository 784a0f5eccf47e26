/* SPDX-License-Identifier: MIT */
/*
 * Description: the topology of the machine running the test (real /sys and /proc) is coherent:
 * every online CPU once in ascending order, cores, nodes and L3 domains partition them, and the
 * index accessors refuse out-of-range indexes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

int main(void)
{
	emu_topology *topo = NULL;
	emu_topology_summary s;
	emu_cpuset in_nodes, in_l3;
	emu_numa_node node;
	emu_l3_domain l3;
	emu_cpu cpu;
	int status = T_EXIT_FAIL;
	int prev = -1, max_smt = 0, max_core = -1;

	unsetenv("EMU_SYSFS_ROOT");
	T_CHECK_EQ(emu_topology_open(NULL, &topo), 0);
	T_CHECK_EQ(emu_topology_get_summary(topo, &s), 0);
	printf("%s: %s family %d model %d stepping %d, %d sockets, %d cores, %d cpus, smt %d, %d nodes, %d l3\n",
	       (const char *)s.vendor, (const char *)s.model_name, s.family, s.model, s.stepping, s.sockets,
	       s.physical_cores, s.logical_cpus, s.threads_per_core, s.numa_nodes, s.l3_domains);

	T_CHECK_EQ(s.logical_cpus, sysconf(_SC_NPROCESSORS_ONLN));
	T_CHECK(s.sockets >= 1 && s.sockets <= s.physical_cores);
	T_CHECK(s.physical_cores >= 1 && s.physical_cores <= s.logical_cpus);
	T_CHECK(s.threads_per_core >= 1);
	T_CHECK(s.physical_cores * s.threads_per_core >= s.logical_cpus);
	T_CHECK(s.numa_nodes >= 1);
	T_CHECK(s.l3_domains >= 0 && s.l3_domains <= s.logical_cpus);
#if defined(__x86_64__) || defined(__i386__)
	/* x86 /proc/cpuinfo always names the vendor and the family. */
	T_CHECK(s.vendor[0] != '\0');
	T_CHECK(s.family > 0);
#endif

	memset(&in_nodes, 0, sizeof(in_nodes));
	for (int i = 0; i < s.numa_nodes; i++) {
		T_CHECK_EQ(emu_topology_get_node(topo, i, &node), 0);
		T_CHECK_EQ(node.cpu_count, t_cpuset_count(&node.cpus));
		T_CHECK(node.distance_count >= 1);
		for (int w = 0; w < EMU_CPUSET_WORDS; w++) {
			T_CHECK((in_nodes.bits[w] & node.cpus.bits[w]) == 0);
			in_nodes.bits[w] |= node.cpus.bits[w];
		}
	}
	memset(&in_l3, 0, sizeof(in_l3));
	for (int i = 0; i < s.l3_domains; i++) {
		T_CHECK_EQ(emu_topology_get_l3(topo, i, &l3), 0);
		T_CHECK_EQ(l3.cpu_count, t_cpuset_count(&l3.cpus));
		for (int w = 0; w < EMU_CPUSET_WORDS; w++)
			in_l3.bits[w] |= l3.cpus.bits[w];
	}

	for (int i = 0; i < s.logical_cpus; i++) {
		T_CHECK_EQ(emu_topology_get_cpu(topo, i, &cpu), 0);
		T_CHECK(cpu.cpu > prev);
		prev = cpu.cpu;
		T_CHECK(cpu.core_index >= 0 && cpu.core_index < s.physical_cores);
		T_CHECK(cpu.smt_index >= 0 && cpu.smt_index < s.threads_per_core);
		T_CHECK(t_cpuset_has(&in_nodes, cpu.cpu));
		if (cpu.l3_index >= 0) {
			T_CHECK_EQ(emu_topology_get_l3(topo, cpu.l3_index, &l3), 0);
			T_CHECK(t_cpuset_has(&l3.cpus, cpu.cpu));
		} else {
			T_CHECK(!t_cpuset_has(&in_l3, cpu.cpu));
		}
		if (cpu.smt_index > max_smt)
			max_smt = cpu.smt_index;
		if (cpu.core_index > max_core)
			max_core = cpu.core_index;
	}
	/* core_index is dense and some core has threads_per_core threads. */
	T_CHECK_EQ(max_core, s.physical_cores - 1);
	T_CHECK_EQ(max_smt, s.threads_per_core - 1);

	T_CHECK_EQ(emu_topology_get_cpu(topo, -1, &cpu), -ERANGE);
	T_CHECK_EQ(emu_topology_get_cpu(topo, s.logical_cpus, &cpu), -ERANGE);
	T_CHECK_EQ(emu_topology_get_node(topo, s.numa_nodes, &node), -ERANGE);
	T_CHECK_EQ(emu_topology_get_l3(topo, s.l3_domains, &l3), -ERANGE);
	T_CHECK_EQ(emu_topology_get_summary(topo, NULL), -EINVAL);
	T_CHECK_EQ(emu_topology_get_cpu(NULL, 0, &cpu), -EINVAL);
	T_CHECK_EQ(emu_topology_open(NULL, NULL), -EINVAL);
	status = T_EXIT_PASS;
err:
	if (topo)
		emu_topology_close(topo);
	return status;
}
