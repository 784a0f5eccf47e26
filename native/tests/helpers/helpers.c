/* SPDX-License-Identifier: MIT */
/* helpers.c - see helpers.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

void t_report(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
}

void t_report_eq(const char *file, int line, const char *what, long long actual, long long expected)
{
	fprintf(stderr, "%s:%d: %s is %lld, expected %lld", file, line, what, actual, expected);
	if (actual < 0 && actual > -4096)
		fprintf(stderr, " (%s)", strerror((int)-actual));
	fputc('\n', stderr);
}

int t_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	return T_EXIT_SKIP;
}

void t_scratch_path(char *buf, size_t size, const char *tag)
{
	snprintf(buf, size, "%s/t-%s-%d", EMU_SCRATCH_DIR, tag, (int)getpid());
}

char *t_read_file(const char *path)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf)
		goto err;
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger)
				goto err;
			buf = bigger;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0)
			goto err;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
err:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

int t_write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return close(fd);
}

int t_mkdirs(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

void t_remove_tree(const char *path)
{
	struct dirent *de;
	DIR *dir = opendir(path);

	if (!dir) {
		unlink(path);
		return;
	}
	while ((de = readdir(dir))) {
		char child[PATH_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		t_remove_tree(child);
	}
	closedir(dir);
	rmdir(path);
}

void t_cpuset_add(emu_cpuset *set, int cpu)
{
	set->bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
}

int t_cpuset_has(const emu_cpuset *set, int cpu)
{
	return cpu >= 0 && cpu < EMU_MAX_CPUS && ((set->bits[cpu / 64] >> (cpu % 64)) & 1);
}

int t_cpuset_count(const emu_cpuset *set)
{
	int n = 0;

	for (int i = 0; i < EMU_CPUSET_WORDS; i++)
		n += __builtin_popcountll(set->bits[i]);
	return n;
}

/* JSON: recursive descent over the text; errors free what was built and return -1. */
static const char *json_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static void json_clear(struct t_json *json)
{
	for (size_t i = 0; i < json->count; i++) {
		json_clear(&json->items[i]);
		if (json->keys)
			free(json->keys[i]);
	}
	free(json->items);
	free(json->keys);
	free(json->string);
	memset(json, 0, sizeof(*json));
}

static int json_string(const char **pp, char **out)
{
	const char *p = *pp + 1;
	size_t len = 0;
	char *s;

	while (p[len] && p[len] != '"') {
		if (p[len] == '\\')
			return -1;
		len++;
	}
	if (p[len] != '"')
		return -1;
	s = malloc(len + 1);
	if (!s)
		return -1;
	memcpy(s, p, len);
	s[len] = '\0';
	*out = s;
	*pp = p + len + 1;
	return 0;
}

static int json_value(const char **pp, struct t_json *out);

static int json_append(struct t_json *json, char *key, const char **pp)
{
	struct t_json *items = realloc(json->items, (json->count + 1) * sizeof(*items));

	if (!items)
		return -1;
	json->items = items;
	if (json->type == T_JSON_OBJECT) {
		char **keys = realloc(json->keys, (json->count + 1) * sizeof(*keys));

		if (!keys)
			return -1;
		json->keys = keys;
		json->keys[json->count] = key;
	}
	memset(&json->items[json->count], 0, sizeof(*items));
	json->count++;
	return json_value(pp, &json->items[json->count - 1]);
}

static int json_container(const char **pp, struct t_json *out, char close)
{
	const char *p = json_space(*pp + 1);

	out->type = close == '}' ? T_JSON_OBJECT : T_JSON_ARRAY;
	if (*p == close) {
		*pp = p + 1;
		return 0;
	}
	for (;;) {
		char *key = NULL;

		if (out->type == T_JSON_OBJECT) {
			if (*p != '"' || json_string(&p, &key))
				return -1;
			p = json_space(p);
			if (*p != ':') {
				free(key);
				return -1;
			}
			p = json_space(p + 1);
		}
		if (json_append(out, key, &p))
			return -1;
		p = json_space(p);
		if (*p == close) {
			*pp = p + 1;
			return 0;
		}
		if (*p != ',')
			return -1;
		p = json_space(p + 1);
	}
}

static int json_value(const char **pp, struct t_json *out)
{
	const char *p = json_space(*pp);
	char *end;

	if (*p == '{' || *p == '[') {
		if (json_container(&p, out, *p == '{' ? '}' : ']'))
			return -1;
	} else if (*p == '"') {
		out->type = T_JSON_STRING;
		if (json_string(&p, &out->string))
			return -1;
	} else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
		out->type = T_JSON_BOOL;
		out->number = *p == 't';
		p += out->number ? 4 : 5;
	} else if (!strncmp(p, "null", 4)) {
		out->type = T_JSON_NULL;
		p += 4;
	} else {
		out->type = T_JSON_NUMBER;
		errno = 0;
		out->number = strtoll(p, &end, 10);
		if (end == p || errno || *end == '.' || *end == 'e' || *end == 'E')
			return -1;
		p = end;
	}
	*pp = p;
	return 0;
}

struct t_json *t_json_parse(const char *text)
{
	struct t_json *json = calloc(1, sizeof(*json));
	const char *p = text;

	if (!json)
		return NULL;
	if (json_value(&p, json) || *json_space(p)) {
		t_json_free(json);
		return NULL;
	}
	return json;
}

void t_json_free(struct t_json *json)
{
	if (!json)
		return;
	json_clear(json);
	free(json);
}

const struct t_json *t_json_get(const struct t_json *object, const char *key)
{
	if (!object || object->type != T_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < object->count; i++)
		if (!strcmp(object->keys[i], key))
			return &object->items[i];
	return NULL;
}

long long t_json_int(const struct t_json *object, const char *key)
{
	const struct t_json *v = t_json_get(object, key);

	if (!v || (v->type != T_JSON_NUMBER && v->type != T_JSON_BOOL)) {
		fprintf(stderr, "expected.json: no integer \"%s\"\n", key);
		return -1;
	}
	return v->number;
}

int t_json_cpuset(const struct t_json *array, emu_cpuset *set)
{
	memset(set, 0, sizeof(*set));
	if (!array || array->type != T_JSON_ARRAY)
		return -1;
	for (size_t i = 0; i < array->count; i++) {
		const struct t_json *v = &array->items[i];

		if (v->type != T_JSON_NUMBER || v->number < 0 || v->number >= EMU_MAX_CPUS)
			return -1;
		t_cpuset_add(set, (int)v->number);
	}
	return 0;
}
