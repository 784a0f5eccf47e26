/* SPDX-License-Identifier: MIT */
/*
 * topology.c - CPUs, sockets, NUMA nodes and L3 domains, read once from sysfs and procfs.
 *
 * The snapshot mirrors what drivers/base/topology.c, drivers/base/cacheinfo.c and
 * drivers/base/node.c publish under /sys/devices/system, plus the first processor block of
 * /proc/cpuinfo (arch/x86/kernel/cpu/proc.c). Every file is read with open(2)/read(2) below
 * EMU_SYSFS_ROOT when it is set, so fixture trees of machines we do not have stand in for the
 * real ones. Files the kernel may omit fall back to the answer a machine without that feature
 * gives: no topology/ directory means one thread per core on package 0, no node/ directory means
 * one node 0 holding every CPU at distance 10, no cache/index* of level 3 means no L3 domains.
 */
#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

/* Large enough for any cpulist of EMU_MAX_CPUS CPUs and any node distance row. */
#define TEXT_MAX 8192
/* The first processor block of /proc/cpuinfo fits; the rest of the file is not needed. */
#define CPUINFO_MAX 65536

struct emu_topology {
	emu_topology_summary summary;
	emu_cpu *cpus;            /* summary.logical_cpus, ascending cpu */
	emu_numa_node *nodes;     /* summary.numa_nodes, ascending id */
	emu_l3_domain *l3;        /* summary.l3_domains, ascending lowest CPU */
};

/* What one CPU's level-3 cache/indexN says, before the domains are numbered. */
struct l3_seen {
	emu_cpuset cpus;
	int32_t id;
	uint64_t size_bytes;
};

static void cpuset_set(emu_cpuset *set, int cpu)
{
	set->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
}

static int cpuset_test(const emu_cpuset *set, int cpu)
{
	return (set->bits[cpu / 64] >> (cpu % 64)) & 1;
}

static int cpuset_count(const emu_cpuset *set)
{
	int n = 0;

	for (int i = 0; i < EMU_CPUSET_WORDS; i++)
		n += __builtin_popcountll(set->bits[i]);
	return n;
}

/* Lowest CPU in the set, or EMU_MAX_CPUS when it is empty. */
static int cpuset_first(const emu_cpuset *set)
{
	for (int i = 0; i < EMU_CPUSET_WORDS; i++)
		if (set->bits[i])
			return i * 64 + __builtin_ctzll(set->bits[i]);
	return EMU_MAX_CPUS;
}

static int cpuset_equal(const emu_cpuset *a, const emu_cpuset *b)
{
	return memcmp(a->bits, b->bits, sizeof(a->bits)) == 0;
}

/* CPUs of the set below cpu: a CPU's position in a sorted list such as thread_siblings_list. */
static int cpuset_rank(const emu_cpuset *set, int cpu)
{
	int n = 0;

	for (int i = 0; i < cpu / 64; i++)
		n += __builtin_popcountll(set->bits[i]);
	if (cpu % 64)
		n += __builtin_popcountll(set->bits[cpu / 64] & ((UINT64_C(1) << (cpu % 64)) - 1));
	return n;
}

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	return p;
}

static int parse_uint(const char **pp, long *out)
{
	const char *p = *pp;
	char *end;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	*out = strtol(p, &end, 10);
	if (errno)
		return -EINVAL;
	*pp = end;
	return 0;
}

/*
 * Parses a kernel cpulist ("0-3,8-11,64", as bitmap_print_to_pagebuf writes it; surrounding
 * white space allowed, empty means no CPUs). -E2BIG for a CPU at or beyond EMU_MAX_CPUS.
 */
static int cpulist_parse(const char *text, emu_cpuset *set)
{
	const char *p = skip_space(text);

	memset(set, 0, sizeof(*set));
	while (*p) {
		long lo, hi;

		if (parse_uint(&p, &lo))
			return -EINVAL;
		hi = lo;
		if (*p == '-') {
			p++;
			if (parse_uint(&p, &hi) || hi < lo)
				return -EINVAL;
		}
		if (hi >= EMU_MAX_CPUS)
			return -E2BIG;
		for (long cpu = lo; cpu <= hi; cpu++)
			cpuset_set(set, (int)cpu);
		if (*p == ',')
			p++;
		else if (*skip_space(p))
			return -EINVAL;
		else
			break;
	}
	return 0;
}

static int read_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads the file named by fmt into buf. */
static int read_path(char *buf, size_t size, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return emu_read_text(path, buf, size, 0);
}

static int parse_int_text(const char *text, int32_t *out)
{
	const char *p = skip_space(text);
	char *end;
	long v;

	errno = 0;
	v = strtol(p, &end, 10);
	if (errno || end == p || *skip_space(end) || v < INT32_MIN || v > INT32_MAX)
		return -EINVAL;
	*out = (int32_t)v;
	return 0;
}

/* cache/index3/size: "16384K" (drivers/base/cacheinfo.c prints kibibytes). */
static int parse_size_text(const char *text, uint64_t *out)
{
	const char *p = skip_space(text);
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (*skip_space(end))
		return -EINVAL;
	*out = v;
	return 0;
}

/* Reads an integer file; missing files leave *out alone and return -ENOENT. */
static int read_int_file(const char *root, int cpu, const char *rel, int32_t *out)
{
	char buf[64];
	int ret;

	ret = read_path(buf, sizeof(buf), "%s/sys/devices/system/cpu/cpu%d/%s", root, cpu, rel);
	if (ret < 0)
		return ret;
	return parse_int_text(buf, out);
}

/* Finds the cache/indexN of level 3 for one CPU; 0 with seen->cpus empty when there is none. */
static int read_cpu_l3(const char *root, int cpu, struct l3_seen *seen, char *buf)
{
	memset(seen, 0, sizeof(*seen));
	seen->id = -1;
	for (int index = 0;; index++) {
		int32_t level;
		int ret;

		ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/cpu/cpu%d/cache/index%d/level", root, cpu,
				index);
		if (ret == -ENOENT)
			return 0;
		if (ret < 0)
			return ret;
		ret = parse_int_text(buf, &level);
		if (ret)
			return ret;
		if (level != 3)
			continue;

		ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/cpu/cpu%d/cache/index%d/shared_cpu_list", root,
				cpu, index);
		if (ret < 0)
			return ret;
		ret = cpulist_parse(buf, &seen->cpus);
		if (ret)
			return ret;
		/* A CPU always shares its own L3, whatever a malformed list says. */
		cpuset_set(&seen->cpus, cpu);

		ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/cpu/cpu%d/cache/index%d/id", root, cpu, index);
		if (ret >= 0)
			ret = parse_int_text(buf, &seen->id);
		if (ret < 0 && ret != -ENOENT)
			return ret;

		ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/cpu/cpu%d/cache/index%d/size", root, cpu, index);
		if (ret >= 0)
			ret = parse_size_text(buf, &seen->size_bytes);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		return 0;
	}
}

/*
 * Domains are numbered in discovery order while scanning; the contract orders them by lowest CPU
 * (ties, which only inconsistent trees produce, keep discovery order). l3_of[i] holds the discovery
 * number of cpus[i]'s domain, or -1.
 */
static int order_l3_domains(struct emu_topology *topo, const int32_t *l3_of, int n)
{
	int count = topo->summary.l3_domains;
	emu_l3_domain *sorted;
	int32_t *rank;

	sorted = calloc((size_t)count + 1, sizeof(*sorted));
	rank = calloc((size_t)count + 1, sizeof(*rank));
	if (!sorted || !rank) {
		free(sorted);
		free(rank);
		return -ENOMEM;
	}
	for (int d = 0; d < count; d++) {
		int first = cpuset_first(&topo->l3[d].cpus);

		for (int e = 0; e < count; e++) {
			int other = cpuset_first(&topo->l3[e].cpus);

			rank[d] += other < first || (other == first && e < d);
		}
		sorted[rank[d]] = topo->l3[d];
		if (sorted[rank[d]].id < 0)
			sorted[rank[d]].id = rank[d];
	}
	for (int i = 0; i < n; i++)
		topo->cpus[i].l3_index = l3_of[i] < 0 ? -1 : rank[l3_of[i]];
	free(topo->l3);
	free(rank);
	topo->l3 = sorted;
	return 0;
}

/* Reads per-CPU topology and caches for every online CPU; fills cpus, the L3 domains and the summary. */
static int read_cpus(const char *root, struct emu_topology *topo, char *buf)
{
	emu_topology_summary *sum = &topo->summary;
	emu_cpuset online;
	struct l3_seen seen;
	int32_t *l3_of = NULL;
	int ret, n = 0;

	ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/cpu/online", root);
	if (ret < 0)
		return ret;
	ret = cpulist_parse(buf, &online);
	if (ret)
		return ret;
	sum->logical_cpus = cpuset_count(&online);
	if (sum->logical_cpus == 0)
		return -EINVAL;

	topo->cpus = calloc((size_t)sum->logical_cpus, sizeof(*topo->cpus));
	topo->l3 = calloc((size_t)sum->logical_cpus, sizeof(*topo->l3));
	l3_of = calloc((size_t)sum->logical_cpus, sizeof(*l3_of));
	if (!topo->cpus || !topo->l3 || !l3_of) {
		ret = -ENOMEM;
		goto out;
	}

	sum->threads_per_core = 1;
	for (int cpu = 0; cpu < EMU_MAX_CPUS; cpu++) {
		emu_cpu *c;
		emu_cpuset siblings;
		int threads, new_package, d;

		if (!cpuset_test(&online, cpu))
			continue;
		c = &topo->cpus[n];
		c->cpu = cpu;
		c->package_id = 0;
		c->core_id = cpu;
		ret = read_int_file(root, cpu, "topology/physical_package_id", &c->package_id);
		if (ret < 0 && ret != -ENOENT)
			goto out;
		ret = read_int_file(root, cpu, "topology/core_id", &c->core_id);
		if (ret < 0 && ret != -ENOENT)
			goto out;

		memset(&siblings, 0, sizeof(siblings));
		ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", root,
				cpu);
		if (ret >= 0)
			ret = cpulist_parse(buf, &siblings);
		if (ret < 0 && ret != -ENOENT)
			goto out;
		cpuset_set(&siblings, cpu);
		threads = cpuset_count(&siblings);
		if (threads > sum->threads_per_core)
			sum->threads_per_core = threads;
		c->smt_index = cpuset_rank(&siblings, cpu);

		/* core_id repeats across packages, so a physical core is the (package, core_id) pair. */
		c->core_index = sum->physical_cores;
		for (int i = 0; i < n; i++) {
			if (topo->cpus[i].package_id == c->package_id && topo->cpus[i].core_id == c->core_id) {
				c->core_index = topo->cpus[i].core_index;
				break;
			}
		}
		if (c->core_index == sum->physical_cores)
			sum->physical_cores++;

		new_package = 1;
		for (int i = 0; i < n && new_package; i++)
			new_package = topo->cpus[i].package_id != c->package_id;
		sum->sockets += new_package;

		ret = read_cpu_l3(root, cpu, &seen, buf);
		if (ret)
			goto out;
		l3_of[n] = -1;
		if (cpuset_count(&seen.cpus)) {
			for (d = 0; d < sum->l3_domains; d++)
				if (cpuset_equal(&topo->l3[d].cpus, &seen.cpus))
					break;
			if (d == sum->l3_domains) {
				topo->l3[d].id = seen.id;
				topo->l3[d].cpus = seen.cpus;
				topo->l3[d].cpu_count = cpuset_count(&seen.cpus);
				topo->l3[d].size_bytes = seen.size_bytes;
				sum->l3_domains++;
			}
			l3_of[n] = d;
		}
		n++;
	}

	ret = order_l3_domains(topo, l3_of, n);
	if (ret)
		goto out;
	ret = 0;
out:
	free(l3_of);
	return ret;
}

/* Node ids from node/online, or from the nodeN directories when that file is absent. */
static int read_node_ids(const char *root, emu_cpuset *ids, char *buf)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int ret;

	ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/node/online", root);
	if (ret >= 0)
		return cpulist_parse(buf, ids);
	if (ret != -ENOENT)
		return ret;

	memset(ids, 0, sizeof(*ids));
	if (snprintf(path, sizeof(path), "%s/sys/devices/system/node", root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		const char *p = de->d_name + 4;
		long id;

		if (strncmp(de->d_name, "node", 4) || parse_uint(&p, &id) || *p)
			continue;
		if (id >= EMU_MAX_CPUS) {
			closedir(dir);
			return -E2BIG;
		}
		cpuset_set(ids, (int)id);
	}
	closedir(dir);
	return 0;
}

/* nodeN/distance: one column per online node, in node order. */
static int parse_distances(const char *text, emu_numa_node *node)
{
	const char *p = skip_space(text);

	node->distance_count = 0;
	while (*p) {
		long v;

		if (parse_uint(&p, &v) || v > INT32_MAX)
			return -EINVAL;
		if (node->distance_count == EMU_MAX_NODES)
			return -E2BIG;
		node->distances[node->distance_count++] = (int32_t)v;
		p = skip_space(p);
	}
	return 0;
}

static int read_nodes(const char *root, struct emu_topology *topo, char *buf)
{
	emu_topology_summary *sum = &topo->summary;
	emu_cpuset ids, with_memory;
	int have_memory_list, ret;

	ret = read_node_ids(root, &ids, buf);
	if (ret)
		return ret;

	/* has_memory tells memory-only nodes from nodes that are merely possible; without it keep them all. */
	ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/node/has_memory", root);
	have_memory_list = ret >= 0;
	if (have_memory_list) {
		ret = cpulist_parse(buf, &with_memory);
		if (ret)
			return ret;
	} else if (ret != -ENOENT) {
		return ret;
	}

	topo->nodes = calloc(EMU_MAX_NODES, sizeof(*topo->nodes));
	if (!topo->nodes)
		return -ENOMEM;

	for (int id = 0; id < EMU_MAX_CPUS; id++) {
		emu_numa_node node;

		if (!cpuset_test(&ids, id))
			continue;
		memset(&node, 0, sizeof(node));
		node.id = id;
		ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/node/node%d/cpulist", root, id);
		if (ret >= 0)
			ret = cpulist_parse(buf, &node.cpus);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		node.cpu_count = cpuset_count(&node.cpus);
		if (node.cpu_count == 0 && have_memory_list && !cpuset_test(&with_memory, id))
			continue;

		ret = read_path(buf, TEXT_MAX, "%s/sys/devices/system/node/node%d/distance", root, id);
		if (ret >= 0)
			ret = parse_distances(buf, &node);
		if (ret < 0 && ret != -ENOENT)
			return ret;

		if (sum->numa_nodes == EMU_MAX_NODES)
			return -E2BIG;
		topo->nodes[sum->numa_nodes++] = node;
	}

	if (sum->numa_nodes == 0) {
		emu_numa_node *node = &topo->nodes[0];

		for (int i = 0; i < sum->logical_cpus; i++)
			cpuset_set(&node->cpus, topo->cpus[i].cpu);
		node->cpu_count = sum->logical_cpus;
		node->distance_count = 1;
		node->distances[0] = 10;
		sum->numa_nodes = 1;
	}

	for (int i = 0; i < sum->logical_cpus; i++) {
		emu_cpu *c = &topo->cpus[i];

		c->node = -1;
		for (int n = 0; n < sum->numa_nodes; n++) {
			if (cpuset_test(&topo->nodes[n].cpus, c->cpu)) {
				c->node = topo->nodes[n].id;
				break;
			}
		}
	}
	return 0;
}

/* Copies "key<tabs>: value" of the first processor block into the summary. */
static void parse_cpuinfo_line(char *line, emu_topology_summary *sum)
{
	char *colon = strchr(line, ':');
	char *key_end, *value, *end;

	if (!colon)
		return;
	key_end = colon;
	while (key_end > line && (key_end[-1] == ' ' || key_end[-1] == '\t'))
		key_end--;
	*key_end = '\0';
	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';

	if (!strcmp(line, "vendor_id"))
		snprintf((char *)sum->vendor, sizeof(sum->vendor), "%s", value);
	else if (!strcmp(line, "model name"))
		snprintf((char *)sum->model_name, sizeof(sum->model_name), "%s", value);
	else if (!strcmp(line, "cpu family"))
		parse_int_text(value, &sum->family);
	else if (!strcmp(line, "model"))
		parse_int_text(value, &sum->model);
	else if (!strcmp(line, "stepping"))
		parse_int_text(value, &sum->stepping);
}

/* Identification from /proc/cpuinfo; a missing file or field leaves -1 and empty strings. */
static int read_cpuinfo(const char *root, emu_topology_summary *sum)
{
	char path[PATH_MAX];
	char *buf, *line;
	int ret;

	sum->family = -1;
	sum->model = -1;
	sum->stepping = -1;
	if (snprintf(path, sizeof(path), "%s/proc/cpuinfo", root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	buf = malloc(CPUINFO_MAX);
	if (!buf)
		return -ENOMEM;
	ret = emu_read_text(path, buf, CPUINFO_MAX, 1);
	if (ret < 0) {
		free(buf);
		return ret == -ENOENT ? 0 : ret;
	}

	line = buf;
	while (*line && *line != '\n') {
		char *nl = strchr(line, '\n');

		if (nl)
			*nl = '\0';
		parse_cpuinfo_line(line, sum);
		if (!nl)
			break;
		line = nl + 1;
	}
	free(buf);
	return 0;
}

static void topology_free(struct emu_topology *topo)
{
	free(topo->cpus);
	free(topo->nodes);
	free(topo->l3);
	free(topo);
}

EMU_EXPORT int32_t emu_topology_open(const char *sysfs_root, emu_topology **out)
{
	const char *root = sysfs_root ? sysfs_root : getenv("EMU_SYSFS_ROOT");
	struct emu_topology *topo;
	char path[PATH_MAX];
	struct stat st;
	char *buf;
	int ret;

	if (!out)
		return -EINVAL;
	if (!root)
		root = "";
	if (snprintf(path, sizeof(path), "%s/sys/devices/system/cpu", root) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (stat(path, &st))
		return errno == ENOTDIR ? -ENOENT : -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOENT;

	topo = calloc(1, sizeof(*topo));
	buf = malloc(TEXT_MAX);
	if (!topo || !buf) {
		ret = -ENOMEM;
		goto err;
	}
	ret = read_cpus(root, topo, buf);
	if (ret)
		goto err;
	ret = read_nodes(root, topo, buf);
	if (ret)
		goto err;
	ret = read_cpuinfo(root, &topo->summary);
	if (ret)
		goto err;
	free(buf);
	*out = topo;
	return 0;
err:
	free(buf);
	if (topo)
		topology_free(topo);
	return ret;
}

EMU_EXPORT int32_t emu_topology_close(emu_topology *topo)
{
	if (!topo)
		return -EINVAL;
	topology_free(topo);
	return 0;
}

EMU_EXPORT int32_t emu_topology_get_summary(const emu_topology *topo, emu_topology_summary *out)
{
	if (!topo || !out)
		return -EINVAL;
	*out = topo->summary;
	return 0;
}

EMU_EXPORT int32_t emu_topology_get_cpu(const emu_topology *topo, int32_t index, emu_cpu *out)
{
	if (!topo || !out)
		return -EINVAL;
	if (index < 0 || index >= topo->summary.logical_cpus)
		return -ERANGE;
	*out = topo->cpus[index];
	return 0;
}

EMU_EXPORT int32_t emu_topology_get_node(const emu_topology *topo, int32_t index, emu_numa_node *out)
{
	if (!topo || !out)
		return -EINVAL;
	if (index < 0 || index >= topo->summary.numa_nodes)
		return -ERANGE;
	*out = topo->nodes[index];
	return 0;
}

EMU_EXPORT int32_t emu_topology_get_l3(const emu_topology *topo, int32_t index, emu_l3_domain *out)
{
	if (!topo || !out)
		return -EINVAL;
	if (index < 0 || index >= topo->summary.l3_domains)
		return -ERANGE;
	*out = topo->l3[index];
	return 0;
}
