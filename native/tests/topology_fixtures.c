/* SPDX-License-Identifier: MIT */
/*
 * Description: the topology read from each EPYC fixture tree (tests/fixtures/sysfs/<machine>,
 * through EMU_SYSFS_ROOT) matches the facts in its expected.json, and CPUs are numbered the AMD
 * way (cpu N and N + physical cores are SMT siblings of physical core N).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static int check_summary(const emu_topology_summary *s, const struct t_json *want)
{
	const struct t_json *name = t_json_get(want, "modelName");
	const struct t_json *vendor = t_json_get(want, "vendor");

	T_CHECK(name && name->type == T_JSON_STRING && vendor && vendor->type == T_JSON_STRING);
	T_CHECK(!strcmp((const char *)s->model_name, name->string));
	T_CHECK(!strcmp((const char *)s->vendor, vendor->string));
	T_CHECK_EQ(s->family, t_json_int(want, "family"));
	T_CHECK_EQ(s->model, t_json_int(want, "model"));
	T_CHECK_EQ(s->stepping, t_json_int(want, "stepping"));
	T_CHECK_EQ(s->sockets, t_json_int(want, "sockets"));
	T_CHECK_EQ(s->physical_cores, t_json_int(want, "physicalCores"));
	T_CHECK_EQ(s->logical_cpus, t_json_int(want, "logicalCpus"));
	T_CHECK_EQ(s->threads_per_core, t_json_int(want, "smt"));
	T_CHECK_EQ(s->numa_nodes, t_json_get(want, "numaNodes")->count);
	T_CHECK_EQ(s->l3_domains, t_json_get(want, "l3Domains")->count);
	return 0;
err:
	return -1;
}

static int check_nodes(const emu_topology *topo, const struct t_json *want)
{
	const struct t_json *nodes = t_json_get(want, "numaNodes");
	emu_numa_node node;
	emu_cpuset cpus;

	for (size_t i = 0; i < nodes->count; i++) {
		const struct t_json *w = &nodes->items[i];
		const struct t_json *distances = t_json_get(w, "distances");

		T_CHECK_EQ(emu_topology_get_node(topo, (int32_t)i, &node), 0);
		T_CHECK_EQ(node.id, t_json_int(w, "id"));
		T_CHECK_EQ(t_json_cpuset(t_json_get(w, "cpus"), &cpus), 0);
		T_CHECK(!memcmp(&node.cpus, &cpus, sizeof(cpus)));
		T_CHECK_EQ(node.cpu_count, t_json_get(w, "cpus")->count);
		T_CHECK(distances && distances->type == T_JSON_ARRAY);
		T_CHECK_EQ(node.distance_count, distances->count);
		for (size_t d = 0; d < distances->count; d++)
			T_CHECK_EQ(node.distances[d], distances->items[d].number);
	}
	T_CHECK_EQ(emu_topology_get_node(topo, (int32_t)nodes->count, &node), -ERANGE);
	return 0;
err:
	return -1;
}

static int check_l3(const emu_topology *topo, const struct t_json *want)
{
	const struct t_json *domains = t_json_get(want, "l3Domains");
	emu_l3_domain l3;
	emu_cpuset cpus;

	for (size_t i = 0; i < domains->count; i++) {
		const struct t_json *w = &domains->items[i];

		T_CHECK_EQ(emu_topology_get_l3(topo, (int32_t)i, &l3), 0);
		T_CHECK_EQ(l3.id, t_json_int(w, "id"));
		T_CHECK_EQ(t_json_cpuset(t_json_get(w, "cpus"), &cpus), 0);
		T_CHECK(!memcmp(&l3.cpus, &cpus, sizeof(cpus)));
		T_CHECK_EQ(l3.cpu_count, t_json_get(w, "cpus")->count);
		T_CHECK_EQ(l3.size_bytes, t_json_int(w, "sizeBytes"));
	}
	T_CHECK_EQ(emu_topology_get_l3(topo, -1, &l3), -ERANGE);
	return 0;
err:
	return -1;
}

/* Per-CPU facts: AMD numbering, and each CPU's node and L3 index agree with the lists. */
static int check_cpus(const emu_topology *topo, const emu_topology_summary *s, const struct t_json *want)
{
	const struct t_json *nodes = t_json_get(want, "numaNodes");
	const struct t_json *domains = t_json_get(want, "l3Domains");
	emu_cpu cpu, first;
	emu_cpuset set;

	T_CHECK_EQ(s->logical_cpus, s->physical_cores * s->threads_per_core);
	for (int i = 0; i < s->logical_cpus; i++) {
		int core = i % s->physical_cores;
		int want_node = -1, want_l3 = -1;

		T_CHECK_EQ(emu_topology_get_cpu(topo, i, &cpu), 0);
		T_CHECK_EQ(cpu.cpu, i);
		T_CHECK_EQ(cpu.core_index, core);
		T_CHECK_EQ(cpu.smt_index, i / s->physical_cores);
		T_CHECK(cpu.package_id >= 0 && cpu.package_id < s->sockets);
		if (i >= s->physical_cores) {
			T_CHECK_EQ(emu_topology_get_cpu(topo, core, &first), 0);
			T_CHECK_EQ(cpu.package_id, first.package_id);
			T_CHECK_EQ(cpu.core_id, first.core_id);
		}
		for (size_t n = 0; n < nodes->count; n++) {
			T_CHECK_EQ(t_json_cpuset(t_json_get(&nodes->items[n], "cpus"), &set), 0);
			if (t_cpuset_has(&set, i))
				want_node = (int)t_json_int(&nodes->items[n], "id");
		}
		for (size_t d = 0; d < domains->count; d++) {
			T_CHECK_EQ(t_json_cpuset(t_json_get(&domains->items[d], "cpus"), &set), 0);
			if (t_cpuset_has(&set, i))
				want_l3 = (int)d;
		}
		T_CHECK_EQ(cpu.node, want_node);
		T_CHECK_EQ(cpu.l3_index, want_l3);
	}
	T_CHECK_EQ(emu_topology_get_cpu(topo, s->logical_cpus, &cpu), -ERANGE);
	return 0;
err:
	return -1;
}

static int check_fixture(const char *dir)
{
	char path[PATH_MAX];
	struct t_json *want = NULL;
	emu_topology *topo = NULL;
	emu_topology_summary s;
	char *text;
	int ret = -1;

	T_CHECK(snprintf(path, sizeof(path), "%s/expected.json", dir) < (int)sizeof(path));
	text = t_read_file(path);
	T_CHECK(text != NULL);
	want = t_json_parse(text);
	free(text);
	T_CHECK(want != NULL);
	T_CHECK(t_json_get(want, "numaNodes") && t_json_get(want, "l3Domains"));

	T_CHECK_EQ(setenv("EMU_SYSFS_ROOT", dir, 1), 0);
	T_CHECK_EQ(emu_topology_open(NULL, &topo), 0);
	T_CHECK_EQ(emu_topology_get_summary(topo, &s), 0);
	T_CHECK_EQ(check_summary(&s, want), 0);
	T_CHECK_EQ(check_nodes(topo, want), 0);
	T_CHECK_EQ(check_l3(topo, want), 0);
	T_CHECK_EQ(check_cpus(topo, &s, want), 0);
	ret = 0;
err:
	if (topo)
		emu_topology_close(topo);
	t_json_free(want);
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_fixture(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

int main(void)
{
	struct dirent **names = NULL;
	int count, checked = 0, status = T_EXIT_FAIL;

	count = scandir(EMU_FIXTURES_DIR, &names, is_fixture, by_name);
	T_CHECK(count > 0);
	for (int i = 0; i < count; i++) {
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s/%s", EMU_FIXTURES_DIR, names[i]->d_name);
		if (check_fixture(dir)) {
			fprintf(stderr, "fixture %s: FAIL\n", names[i]->d_name);
			goto err;
		}
		printf("fixture %s: ok\n", names[i]->d_name);
		checked++;
	}
	T_CHECK(checked >= 3);
	status = T_EXIT_PASS;
err:
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return status;
}
