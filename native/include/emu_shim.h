/* SPDX-License-Identifier: MIT */
/*
 * emu_shim.h - the one header between Emu's managed code and the machine.
 *
 * Contract (fixed for every export below):
 *  - Every export is named emu_*, returns 0 on success or -errno on failure, and passes its
 *    outputs through pointers. Nothing here prints, except where a comment says so.
 *  - Structs that cross into C# are plain data: fixed-width integers and fixed arrays only.
 *    Their sizes and field offsets are checked against the C compiler by a test
 *    (native/tests/layout_dump.g.c, generated with the C# bindings).
 *  - Constants are enums, so the bindings generator (build/Emu.BindGen, libclang) sees them.
 *  - Opaque handles (emu_topology, emu_ring) are owned by the caller until the matching
 *    destroy/close call; file descriptors are plain int32 owned by the caller.
 *
 * The C# declarations in interop/Emu.Interop/Generated/EmuShim.g.cs are generated from this
 * file: change it, then run `dotnet run --project build/Emu.BindGen`.
 */
#ifndef EMU_SHIM_H
#define EMU_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMU_EXPORT __attribute__((visibility("default")))

/* Limits of the fixed arrays below. */
enum emu_limits {
	EMU_MAX_CPUS = 1024,        /* CPUs an emu_cpuset can name */
	EMU_CPUSET_WORDS = 16,      /* EMU_MAX_CPUS / 64 */
	EMU_MAX_NODES = 64,         /* NUMA nodes (and distance-row length) */
	EMU_NAME_LEN = 64,          /* model name buffer, NUL-terminated */
	EMU_VENDOR_LEN = 16,        /* vendor id buffer, NUL-terminated */
};

/* A set of logical CPUs: bit (cpu % 64) of bits[cpu / 64]. */
typedef struct emu_cpuset {
	uint64_t bits[EMU_CPUSET_WORDS];
} emu_cpuset;

/* ------------------------------------------------------------------------------------------ */
/* topology.c: CPUs, sockets, NUMA nodes, L3 domains from sysfs and /proc/cpuinfo.            */
/* EMU_SYSFS_ROOT=DIR makes it read DIR/sys/devices/system/... and DIR/proc/cpuinfo.          */
/* ------------------------------------------------------------------------------------------ */

typedef struct emu_topology emu_topology;

typedef struct emu_topology_summary {
	int32_t logical_cpus;      /* online logical CPUs */
	int32_t sockets;           /* distinct physical_package_id */
	int32_t physical_cores;    /* distinct (package, core_id) pairs */
	int32_t threads_per_core;  /* SMT width: 1 without SMT */
	int32_t numa_nodes;        /* online nodes with CPUs or memory; 1 when sysfs has none */
	int32_t l3_domains;        /* distinct level-3 shared_cpu_list sets; 0 when not exposed */
	int32_t family;            /* cpuinfo "cpu family", -1 when absent */
	int32_t model;             /* cpuinfo "model", -1 when absent */
	int32_t stepping;          /* cpuinfo "stepping", -1 when absent */
	int32_t reserved;
	uint8_t vendor[EMU_VENDOR_LEN];   /* cpuinfo "vendor_id", e.g. AuthenticAMD */
	uint8_t model_name[EMU_NAME_LEN]; /* cpuinfo "model name", truncated */
} emu_topology_summary;

typedef struct emu_cpu {
	int32_t cpu;         /* logical CPU number as Linux numbers it */
	int32_t package_id;  /* topology/physical_package_id: the socket */
	int32_t core_id;     /* topology/core_id (unique within a package only) */
	int32_t core_index;  /* index of the physical core: dense 0..physical_cores-1 */
	int32_t node;        /* NUMA node id; 0 when sysfs has no nodes, -1 when no node lists the CPU */
	int32_t l3_index;    /* index into the L3 domains; -1 when not exposed */
	int32_t smt_index;   /* position within its core's thread_siblings_list: 0 = first thread */
	int32_t reserved;
} emu_cpu;

typedef struct emu_numa_node {
	int32_t id;                          /* node id (nodeN) */
	int32_t cpu_count;                   /* CPUs in cpus */
	emu_cpuset cpus;                     /* nodeN/cpulist */
	int32_t distance_count;              /* entries used in distances */
	int32_t distances[EMU_MAX_NODES];    /* nodeN/distance, in node order of that file */
} emu_numa_node;

typedef struct emu_l3_domain {
	int32_t id;           /* cache/index3/id when present, else the domain's index */
	int32_t cpu_count;    /* CPUs in cpus */
	emu_cpuset cpus;      /* cache/index3/shared_cpu_list: one CCX on AMD Zen 2 */
	uint64_t size_bytes;  /* cache/index3/size, 0 when absent */
} emu_l3_domain;

/* Reads the topology once (open(2)/read(2) of sysfs and procfs) under sysfs_root: "DIR" reads
 * DIR/sys/devices/system/... and DIR/proc/cpuinfo; NULL takes getenv("EMU_SYSFS_ROOT") and then "/"
 * (managed callers pass the root explicitly: .NET's environment is not the one getenv(3) sees).
 * -ENOENT when the root holds no sys/devices/system/cpu. */
EMU_EXPORT int32_t emu_topology_open(const char *sysfs_root, emu_topology **out);
/* Frees the snapshot (free(3)). */
EMU_EXPORT int32_t emu_topology_close(emu_topology *topo);
EMU_EXPORT int32_t emu_topology_get_summary(const emu_topology *topo, emu_topology_summary *out);
/* index in [0, logical_cpus): CPUs in ascending logical number. -ERANGE outside. */
EMU_EXPORT int32_t emu_topology_get_cpu(const emu_topology *topo, int32_t index, emu_cpu *out);
/* index in [0, numa_nodes): nodes in ascending id. -ERANGE outside. */
EMU_EXPORT int32_t emu_topology_get_node(const emu_topology *topo, int32_t index, emu_numa_node *out);
/* index in [0, l3_domains): domains ordered by their lowest CPU. -ERANGE outside. */
EMU_EXPORT int32_t emu_topology_get_l3(const emu_topology *topo, int32_t index, emu_l3_domain *out);

/* ------------------------------------------------------------------------------------------ */
/* affinity.c: thread pinning.                                                                */
/* ------------------------------------------------------------------------------------------ */

/* Pins the calling thread to set (pthread_setaffinity_np). -EINVAL for an empty set. */
EMU_EXPORT int32_t emu_affinity_set_current(const emu_cpuset *set);
/* Reads the calling thread's CPU set (pthread_getaffinity_np). */
EMU_EXPORT int32_t emu_affinity_get_current(emu_cpuset *set);
/* The calling thread's kernel thread id (gettid(2)). */
EMU_EXPORT int32_t emu_thread_id(int32_t *tid);

/* ------------------------------------------------------------------------------------------ */
/* memory.c: 4 KiB-aligned, node-local memory.                                                */
/* ------------------------------------------------------------------------------------------ */

/* Allocates size bytes (rounded up to 4 KiB), zeroed, 4 KiB-aligned. When libnuma reports more than
 * one node: on NUMA node `node` (numa_alloc_onnode(3)) when node >= 0, -EINVAL if that node has no
 * memory, and numa_alloc(3) when node < 0; otherwise aligned_alloc(3), node ignored. The choice is
 * fixed per process so emu_mem_free can tell. -EINVAL for size 0. Free with emu_mem_free and the
 * same size. */
EMU_EXPORT int32_t emu_mem_alloc(uint64_t size, int32_t node, void **out);
/* Frees an emu_mem_alloc block (numa_free(3) or free(3)). */
EMU_EXPORT int32_t emu_mem_free(void *ptr, uint64_t size);
/* Number of NUMA nodes libnuma sees (numa_available(3), numa_num_configured_nodes(3)); 1 without libnuma support. */
EMU_EXPORT int32_t emu_mem_node_count(int32_t *count);

/* ------------------------------------------------------------------------------------------ */
/* blockdev.c: O_DIRECT files and block devices.                                              */
/* ------------------------------------------------------------------------------------------ */

enum emu_open_flags {
	EMU_OPEN_CREATE = 1,    /* create a regular file of `size` bytes if it does not exist (fallocate(2)) */
	EMU_OPEN_READONLY = 2,  /* O_RDONLY instead of O_RDWR */
	EMU_OPEN_GROW = 4,      /* extend an existing regular file shorter than `size` (fallocate(2)) */
	EMU_OPEN_BUFFERED = 8,  /* no O_DIRECT: page-cache I/O (fio --direct=0) */
};

typedef struct emu_blockdev_info {
	uint64_t size_bytes;            /* st_size, or BLKGETSIZE64 for a block device */
	uint32_t logical_block_size;    /* BLKSSZGET, or the DIO offset alignment for a file */
	uint32_t physical_block_size;   /* BLKPBSZGET, or st_blksize for a file */
	uint32_t dio_mem_align;         /* statx STATX_DIOALIGN stx_dio_mem_align; 512 when unknown */
	uint32_t dio_offset_align;      /* statx STATX_DIOALIGN stx_dio_offset_align; 512 when unknown */
	int32_t is_block_device;        /* 1 for S_ISBLK */
	int32_t created;                /* 1 when this call created the file */
	uint64_t fs_magic;              /* fstatfs(2) f_type of the filesystem holding it (TMPFS_MAGIC, EXT4_SUPER_MAGIC, ...) */
} emu_blockdev_info;

/* Opens path with O_DIRECT (open(2)) and describes it (fstat(2), statx(2), ioctl(2)).
 *  -EISDIR for a directory, -ENOENT for a missing path without EMU_OPEN_CREATE,
 *  -EINVAL when the filesystem refuses O_DIRECT (tmpfs); a file this call created is removed again,
 *  -EFBIG when an existing file is shorter than size and EMU_OPEN_GROW is not set
 *  (nothing is modified in that case), or a block device is smaller than size;
 *  -ENOTBLK for other file types; -EINVAL for unknown flags or EMU_OPEN_READONLY with
 *  EMU_OPEN_CREATE/EMU_OPEN_GROW. size 0 means "whatever it is". info may be NULL. */
EMU_EXPORT int32_t emu_blockdev_open(const char *path, uint32_t flags, uint64_t size, int32_t *fd_out,
				     emu_blockdev_info *info);
/* close(2). */
EMU_EXPORT int32_t emu_blockdev_close(int32_t fd);
/* Reads up to len bytes at offset without O_DIRECT (pread(2) on a fresh descriptor), e.g. to look for
 * another filesystem's signature before formatting. *got receives the bytes read. */
EMU_EXPORT int32_t emu_blockdev_peek(const char *path, uint64_t offset, void *buf, uint32_t len, uint32_t *got);

/* ------------------------------------------------------------------------------------------ */
/* uring.c / psync.c: batched asynchronous I/O.                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct emu_ring emu_ring;

enum emu_engine {
	EMU_ENGINE_AUTO = 0,      /* io_uring, or psync when io_uring is unavailable */
	EMU_ENGINE_IO_URING = 1,  /* liburing */
	EMU_ENGINE_PSYNC = 2,     /* pread(2)/pwrite(2) on the submitting thread, completions queued */
};

enum emu_io_op {
	EMU_OP_READ = 0,   /* IORING_OP_READ / pread(2) */
	EMU_OP_WRITE = 1,  /* IORING_OP_WRITE / pwrite(2) */
	EMU_OP_FSYNC = 2,  /* IORING_OP_FSYNC with IORING_FSYNC_DATASYNC / fdatasync(2): a cache flush */
	EMU_OP_NOP = 3,    /* IORING_OP_NOP: completes at once with res 0 */
};

enum emu_io_flags {
	EMU_IO_FIXED_BUFFER = 1,  /* buf lies in registered buffer buf_index (IORING_OP_READ_FIXED/WRITE_FIXED) */
	EMU_IO_FIXED_FILE = 2,    /* fd is an index into the registered files (IOSQE_FIXED_FILE) */
	EMU_IO_FUA = 4,           /* write with RWF_DSYNC: forced unit access */
};

typedef struct emu_ring_params {
	uint32_t entries;         /* submission queue size (power of two; rounded up) */
	int32_t engine;           /* emu_engine wanted */
	int32_t engine_out;       /* emu_engine chosen */
	int32_t fallback_errno;   /* why io_uring was not chosen under EMU_ENGINE_AUTO (positive errno), else 0 */
} emu_ring_params;

typedef struct emu_io {
	uint64_t user_data;  /* returned unchanged in the completion */
	uint64_t offset;     /* byte offset in the file */
	uint64_t buf;        /* buffer address */
	uint32_t len;        /* bytes */
	int32_t fd;          /* file descriptor, or registered file index with EMU_IO_FIXED_FILE */
	uint16_t op;         /* emu_io_op */
	uint16_t flags;      /* emu_io_flags */
	uint16_t buf_index;  /* registered buffer index with EMU_IO_FIXED_BUFFER */
	uint16_t reserved;
	uint32_t reserved2;
} emu_io;

typedef struct emu_completion {
	uint64_t user_data;  /* from the emu_io */
	int32_t res;         /* bytes transferred, or -errno */
	uint32_t flags;      /* reserved, 0 */
} emu_completion;

typedef struct emu_iovec {
	uint64_t base;  /* buffer address */
	uint64_t len;   /* bytes */
} emu_iovec;

/* Creates a ring (io_uring_queue_init(3)), or a psync queue. Under EMU_ENGINE_AUTO, psync is chosen
 * when /proc/sys/kernel/io_uring_disabled is not 0 (fallback_errno EPERM) or io_uring_queue_init
 * fails with ENOSYS/EPERM (seccomp); params->engine_out and fallback_errno say so. params->entries
 * (1..32768, else -EINVAL) is updated to the rounded size; 2 * entries I/Os may be unreaped at once. */
EMU_EXPORT int32_t emu_ring_create(emu_ring_params *params, emu_ring **out);
/* io_uring_queue_exit(3); waits for nothing: reap everything first. */
EMU_EXPORT int32_t emu_ring_destroy(emu_ring *ring);
/* Queues count descriptors and submits them with one io_uring_submit(3). *submitted is how many were
 * accepted: at most entries per call and 2 * entries unreaped; fewer than count when the queue is full
 * (-EAGAIN only when none were). -EINVAL, nothing submitted, when any descriptor has an unknown op or
 * flags that op does not take. psync performs them here, in order. Not thread-safe: one submitter at
 * a time per ring. */
EMU_EXPORT int32_t emu_ring_submit(emu_ring *ring, const emu_io *ios, uint32_t count, uint32_t *submitted);
/* Copies up to max completions into cqes (io_uring_peek_batch_cqe(3) + io_uring_cq_advance(3)), first
 * waiting for at least min_complete (io_uring_wait_cqe_nr(3)) unless that is 0, and for at most timeout_ns
 * when it is > 0 (-ETIME when it expires with none; -EOPNOTSUPP on kernels before 5.11, which lack
 * IORING_FEAT_EXT_ARG). -EINVAL when min_complete > max. One reaper at a time per ring; may run
 * concurrently with one submitter. */
EMU_EXPORT int32_t emu_ring_reap(emu_ring *ring, emu_completion *cqes, uint32_t max, uint32_t min_complete,
				 int64_t timeout_ns, uint32_t *reaped);
/* Registers buffers for EMU_IO_FIXED_BUFFER (io_uring_register_buffers(3)); psync accepts and ignores. */
EMU_EXPORT int32_t emu_ring_register_buffers(emu_ring *ring, const emu_iovec *iovs, uint32_t count);
/* Registers files for EMU_IO_FIXED_FILE (io_uring_register_files(3)); psync keeps the table. Once per
 * ring (-EBUSY after), before submitting I/O that uses it. */
EMU_EXPORT int32_t emu_ring_register_files(emu_ring *ring, const int32_t *fds, uint32_t count);

#ifdef __cplusplus
}
#endif

#endif /* EMU_SHIM_H */
