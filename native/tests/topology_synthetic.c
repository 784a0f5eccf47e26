/* SPDX-License-Identifier: MIT */
/*
 * Description: topology.c on small trees written by the test: a bare cpu/online with gaps falls
 * back to one node at distance 10, one thread per core and no L3; node/online with a memory-only
 * node and a node with neither CPUs nor memory; L3 domains ordered by lowest CPU whatever order
 * they are met in; cpuinfo's first block only; malformed cpulists are -EINVAL, CPUs beyond
 * EMU_MAX_CPUS -E2BIG.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static char s_root[PATH_MAX];

/* Writes root-relative files: pairs of path and content, NULL-terminated. */
static int tree(const char *const *files)
{
	t_remove_tree(s_root);
	for (; files[0]; files += 2) {
		char path[PATH_MAX];
		char *slash;

		if (snprintf(path, sizeof(path), "%s/%s", s_root, files[0]) >= (int)sizeof(path))
			return -1;
		slash = strrchr(path, '/');
		*slash = '\0';
		if (t_mkdirs(path))
			return -1;
		*slash = '/';
		if (t_write_file(path, files[1]))
			return -1;
	}
	return 0;
}

static int open_tree(emu_topology **topo)
{
	setenv("EMU_SYSFS_ROOT", s_root, 1);
	return emu_topology_open(NULL, topo);
}

static int check_bare_online(void)
{
	static const char *const files[] = {
		"sys/devices/system/cpu/online", " 0-2,5\n",
		NULL,
	};
	emu_topology *topo = NULL;
	emu_topology_summary s;
	emu_numa_node node;
	emu_cpu cpu;
	static const int cpus[] = { 0, 1, 2, 5 };

	T_CHECK_EQ(tree(files), 0);
	T_CHECK_EQ(open_tree(&topo), 0);
	T_CHECK_EQ(emu_topology_get_summary(topo, &s), 0);
	T_CHECK_EQ(s.logical_cpus, 4);
	T_CHECK_EQ(s.sockets, 1);
	T_CHECK_EQ(s.physical_cores, 4);
	T_CHECK_EQ(s.threads_per_core, 1);
	T_CHECK_EQ(s.numa_nodes, 1);
	T_CHECK_EQ(s.l3_domains, 0);
	T_CHECK_EQ(s.family, -1);
	T_CHECK_EQ(s.model, -1);
	T_CHECK_EQ(s.stepping, -1);
	T_CHECK_EQ(s.vendor[0], 0);
	T_CHECK_EQ(s.model_name[0], 0);
	for (int i = 0; i < 4; i++) {
		T_CHECK_EQ(emu_topology_get_cpu(topo, i, &cpu), 0);
		T_CHECK_EQ(cpu.cpu, cpus[i]);
		T_CHECK_EQ(cpu.package_id, 0);
		T_CHECK_EQ(cpu.core_index, i);
		T_CHECK_EQ(cpu.smt_index, 0);
		T_CHECK_EQ(cpu.node, 0);
		T_CHECK_EQ(cpu.l3_index, -1);
	}
	T_CHECK_EQ(emu_topology_get_node(topo, 0, &node), 0);
	T_CHECK_EQ(node.id, 0);
	T_CHECK_EQ(node.cpu_count, 4);
	T_CHECK(t_cpuset_has(&node.cpus, 5) && !t_cpuset_has(&node.cpus, 3));
	T_CHECK_EQ(node.distance_count, 1);
	T_CHECK_EQ(node.distances[0], 10);
	emu_topology_close(topo);
	return 0;
err:
	if (topo)
		emu_topology_close(topo);
	return -1;
}

static int check_nodes_and_l3(void)
{
	static const char *const files[] = {
		"sys/devices/system/cpu/online", "0-3\n",
		/*
		 * cpu0 reports no L3; cpu1 and cpu3 share one (id 7) met before the one of cpu0 and
		 * cpu2 (no id file), which still comes first because it holds the lowest CPU.
		 */
		"sys/devices/system/cpu/cpu0/cache/index0/level", "1\n",
		"sys/devices/system/cpu/cpu1/cache/index0/level", "1\n",
		"sys/devices/system/cpu/cpu1/cache/index1/level", "3\n",
		"sys/devices/system/cpu/cpu1/cache/index1/shared_cpu_list", "1,3\n",
		"sys/devices/system/cpu/cpu1/cache/index1/id", "7\n",
		"sys/devices/system/cpu/cpu2/cache/index0/level", "3\n",
		"sys/devices/system/cpu/cpu2/cache/index0/shared_cpu_list", "0,2\n",
		"sys/devices/system/cpu/cpu2/cache/index0/size", "8M\n",
		"sys/devices/system/cpu/cpu3/cache/index0/level", "3\n",
		"sys/devices/system/cpu/cpu3/cache/index0/shared_cpu_list", "1,3\n",
		"sys/devices/system/cpu/cpu3/cache/index0/id", "7\n",
		/* Two packages whose core_ids overlap; cpu2 and cpu3 are SMT siblings. */
		"sys/devices/system/cpu/cpu0/topology/physical_package_id", "0\n",
		"sys/devices/system/cpu/cpu1/topology/physical_package_id", "1\n",
		"sys/devices/system/cpu/cpu2/topology/physical_package_id", "0\n",
		"sys/devices/system/cpu/cpu3/topology/physical_package_id", "0\n",
		"sys/devices/system/cpu/cpu0/topology/core_id", "0\n",
		"sys/devices/system/cpu/cpu1/topology/core_id", "0\n",
		"sys/devices/system/cpu/cpu2/topology/core_id", "1\n",
		"sys/devices/system/cpu/cpu3/topology/core_id", "1\n",
		"sys/devices/system/cpu/cpu2/topology/thread_siblings_list", "2-3\n",
		"sys/devices/system/cpu/cpu3/topology/thread_siblings_list", "2-3\n",
		/* node1 has memory but no CPUs, node2 has neither and is dropped. */
		"sys/devices/system/node/online", "0-2\n",
		"sys/devices/system/node/has_memory", "0-1\n",
		"sys/devices/system/node/node0/cpulist", "0-3\n",
		"sys/devices/system/node/node0/distance", "10 21 30\n",
		"sys/devices/system/node/node1/cpulist", "\n",
		"sys/devices/system/node/node1/distance", "21 10 30\n",
		"sys/devices/system/node/node2/cpulist", "\n",
		"proc/cpuinfo",
		"processor\t: 0\nvendor_id\t: GenuineTest\ncpu family\t: 6\nmodel\t\t: 85\n"
		"model name\t: Test CPU @ 2.00GHz   \nstepping\t: 7\n\n"
		"processor\t: 1\nvendor_id\t: Other\ncpu family\t: 9\nmodel\t\t: 9\nmodel name\t: Other\n\n",
		NULL,
	};
	emu_topology *topo = NULL;
	emu_topology_summary s;
	emu_numa_node node;
	emu_l3_domain l3;
	emu_cpu cpu;

	T_CHECK_EQ(tree(files), 0);
	T_CHECK_EQ(open_tree(&topo), 0);
	T_CHECK_EQ(emu_topology_get_summary(topo, &s), 0);
	T_CHECK_EQ(s.sockets, 2);
	T_CHECK_EQ(s.physical_cores, 3);
	T_CHECK_EQ(s.threads_per_core, 2);
	T_CHECK_EQ(s.numa_nodes, 2);
	T_CHECK_EQ(s.l3_domains, 2);
	T_CHECK(!strcmp((const char *)s.vendor, "GenuineTest"));
	T_CHECK(!strcmp((const char *)s.model_name, "Test CPU @ 2.00GHz"));
	T_CHECK_EQ(s.family, 6);
	T_CHECK_EQ(s.model, 85);
	T_CHECK_EQ(s.stepping, 7);

	T_CHECK_EQ(emu_topology_get_cpu(topo, 0, &cpu), 0);
	T_CHECK_EQ(cpu.l3_index, -1);
	T_CHECK_EQ(emu_topology_get_cpu(topo, 1, &cpu), 0);
	T_CHECK_EQ(cpu.package_id, 1);
	T_CHECK_EQ(cpu.core_index, 1);
	T_CHECK_EQ(cpu.l3_index, 1);
	T_CHECK_EQ(emu_topology_get_cpu(topo, 2, &cpu), 0);
	T_CHECK_EQ(cpu.core_index, 2);
	T_CHECK_EQ(cpu.smt_index, 0);
	T_CHECK_EQ(cpu.l3_index, 0);
	T_CHECK_EQ(emu_topology_get_cpu(topo, 3, &cpu), 0);
	T_CHECK_EQ(cpu.core_index, 2);
	T_CHECK_EQ(cpu.smt_index, 1);
	T_CHECK_EQ(cpu.l3_index, 1);

	T_CHECK_EQ(emu_topology_get_l3(topo, 0, &l3), 0);
	T_CHECK_EQ(l3.id, 0);
	T_CHECK_EQ(l3.cpu_count, 2);
	T_CHECK(t_cpuset_has(&l3.cpus, 0) && t_cpuset_has(&l3.cpus, 2));
	T_CHECK_EQ(l3.size_bytes, 8 << 20);
	T_CHECK_EQ(emu_topology_get_l3(topo, 1, &l3), 0);
	T_CHECK_EQ(l3.id, 7);
	T_CHECK(t_cpuset_has(&l3.cpus, 1) && t_cpuset_has(&l3.cpus, 3));
	T_CHECK_EQ(l3.size_bytes, 0);

	T_CHECK_EQ(emu_topology_get_node(topo, 1, &node), 0);
	T_CHECK_EQ(node.id, 1);
	T_CHECK_EQ(node.cpu_count, 0);
	T_CHECK_EQ(node.distance_count, 3);
	T_CHECK_EQ(node.distances[0], 21);
	T_CHECK_EQ(emu_topology_get_node(topo, 2, &node), -ERANGE);
	emu_topology_close(topo);
	return 0;
err:
	if (topo)
		emu_topology_close(topo);
	return -1;
}

static int open_with_online(const char *online)
{
	const char *const files[] = { "sys/devices/system/cpu/online", online, NULL };
	emu_topology *topo = NULL;
	int ret;

	if (tree(files))
		return -1000;
	ret = open_tree(&topo);
	if (!ret)
		emu_topology_close(topo);
	return ret;
}

int main(void)
{
	int status = T_EXIT_FAIL;

	t_scratch_path(s_root, sizeof(s_root), "synthetic");
	T_CHECK_EQ(check_bare_online(), 0);
	T_CHECK_EQ(check_nodes_and_l3(), 0);
	T_CHECK_EQ(open_with_online("0-3,8-11,64\n"), 0);
	T_CHECK_EQ(open_with_online("0-\n"), -EINVAL);
	T_CHECK_EQ(open_with_online("3-1\n"), -EINVAL);
	T_CHECK_EQ(open_with_online("0,,1\n"), -EINVAL);
	T_CHECK_EQ(open_with_online("0 1\n"), -EINVAL);
	T_CHECK_EQ(open_with_online("x\n"), -EINVAL);
	T_CHECK_EQ(open_with_online("\n"), -EINVAL);
	T_CHECK_EQ(open_with_online("0-1024\n"), -E2BIG);
	status = T_EXIT_PASS;
err:
	t_remove_tree(s_root);
	return status;
}
