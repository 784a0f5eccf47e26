/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - what the shim's test programs share, after liburing's test/helpers.h: T_EXIT_*
 * codes for CTest (SKIP_RETURN_CODE 77), checks that report and `goto err`, scratch files on the
 * build directory's filesystem, a small JSON reader for the fixtures' expected.json, and the ring
 * round trip both engines must pass.
 */
#ifndef EMU_TEST_HELPERS_H
#define EMU_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "emu_shim.h"

enum t_exit {
	T_EXIT_PASS = 0,
	T_EXIT_FAIL = 1,
	T_EXIT_SKIP = 77,
};

/* Reports a failed condition with its location; callers jump to their cleanup. */
void t_report(const char *file, int line, const char *what);
void t_report_eq(const char *file, int line, const char *what, long long actual, long long expected);

#define T_CHECK(cond)                                                 \
	do {                                                          \
		if (!(cond)) {                                        \
			t_report(__FILE__, __LINE__, #cond);          \
			goto err;                                     \
		}                                                     \
	} while (0)

#define T_CHECK_EQ(actual, expected)                                              \
	do {                                                                      \
		long long t_a_ = (long long)(actual), t_e_ = (long long)(expected);   \
		if (t_a_ != t_e_) {                                               \
			t_report_eq(__FILE__, __LINE__, #actual, t_a_, t_e_);     \
			goto err;                                                 \
		}                                                                 \
	} while (0)

/* Prints why a test is skipped and returns T_EXIT_SKIP. */
int t_skip(const char *why);

/* EMU_SCRATCH_DIR/t-<tag>-<pid>: unique per test process, on the build directory's filesystem. */
void t_scratch_path(char *buf, size_t size, const char *tag);

/* Whole file as a NUL-terminated malloc'd string, or NULL. */
char *t_read_file(const char *path);
/* Creates path (mode 0644) holding text; parents must exist. 0 or -1. */
int t_write_file(const char *path, const char *text);
/* mkdir -p. 0 or -1. */
int t_mkdirs(const char *path);
/* rm -r. */
void t_remove_tree(const char *path);

void t_cpuset_add(emu_cpuset *set, int cpu);
int t_cpuset_has(const emu_cpuset *set, int cpu);
int t_cpuset_count(const emu_cpuset *set);

/* JSON: enough for expected.json (objects, arrays, integers, strings, booleans, null). */
enum t_json_type { T_JSON_NULL, T_JSON_BOOL, T_JSON_NUMBER, T_JSON_STRING, T_JSON_ARRAY, T_JSON_OBJECT };

struct t_json {
	enum t_json_type type;
	long long number;        /* T_JSON_NUMBER, T_JSON_BOOL */
	char *string;            /* T_JSON_STRING */
	size_t count;            /* T_JSON_ARRAY, T_JSON_OBJECT */
	struct t_json *items;    /* T_JSON_ARRAY, T_JSON_OBJECT values */
	char **keys;             /* T_JSON_OBJECT */
};

struct t_json *t_json_parse(const char *text);
void t_json_free(struct t_json *json);
/* Member of an object, or NULL. */
const struct t_json *t_json_get(const struct t_json *object, const char *key);
/* Integer member; -1 with a report when missing or not a number. */
long long t_json_int(const struct t_json *object, const char *key);
/* Array of integers as a CPU set; -1 when it is not one. */
int t_json_cpuset(const struct t_json *array, emu_cpuset *set);

/*
 * Writes, FUA-writes, datasyncs, NOPs and reads back blocks through a ring of the given engine on
 * an O_DIRECT file under EMU_SCRATCH_DIR, checks queue-full and timeout behaviour, and reaps from
 * a second thread while the first submits. T_EXIT_* result.
 */
int t_ring_round_trip(int32_t engine);

#endif /* EMU_TEST_HELPERS_H */
