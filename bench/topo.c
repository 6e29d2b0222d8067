/* Machine topology through hwloc: cores, cache sizes, NUMA nodes, and thread pinning.
 *
 * The topology is loaded once per process (pthread_once) and shared read-only; hwloc documents
 * topology queries and binding as safe from several threads once loading is done. At that load
 * the cores this process may run on are recorded: those with a PU in the calling thread's
 * affinity mask (taskset, cgroups), in topology order. Thread tid is pinned to one PU of the
 * (tid mod n)-th of them, so that with as many threads as cores each gets its own core and with
 * more they wrap around (and the bench says so). When hwloc cannot load or bind, the affinity
 * mask's CPUs stand for cores and the failure is recorded, never fatal. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static hwloc_topology_t topology;
static bool topology_ok;
static pthread_once_t topology_once = PTHREAD_ONCE_INIT;

#define MAX_CORES 1024
static int allowed_pu[MAX_CORES];   /* one PU (OS index) per allowed core, in topology order */
static int allowed_core[MAX_CORES]; /* that core's logical index (-1 without hwloc) */
static int allowed_n;

/* The cores with a PU in the affinity mask, one PU each. */
static void record_allowed(void)
{
	cpu_set_t mask;
	bool have_mask = sched_getaffinity(0, sizeof mask, &mask) == 0;
	if (topology_ok) {
		int cores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
		hwloc_obj_type_t type = cores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
		int count = cores > 0 ? cores : hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
		for (int i = 0; i < count && allowed_n < MAX_CORES; i++) {
			hwloc_obj_t obj = hwloc_get_obj_by_type(topology, type, (unsigned)i);
			if (!obj)
				continue;
			int pu;
			hwloc_bitmap_foreach_begin(pu, obj->cpuset)
				if (!have_mask || (pu < CPU_SETSIZE && CPU_ISSET(pu, &mask))) {
					allowed_pu[allowed_n] = pu;
					allowed_core[allowed_n++] = (int)obj->logical_index;
					break;
				}
			hwloc_bitmap_foreach_end();
		}
	} else if (have_mask) {
		for (int cpu = 0; cpu < CPU_SETSIZE && allowed_n < MAX_CORES; cpu++)
			if (CPU_ISSET(cpu, &mask)) {
				allowed_pu[allowed_n] = cpu;
				allowed_core[allowed_n++] = -1;
			}
	}
	if (allowed_n == 0) { /* nothing known: CPU 0, unpinned if that fails */
		allowed_pu[0] = 0;
		allowed_core[0] = -1;
		allowed_n = 1;
	}
}

static void unload_topology(void)
{
	hwloc_topology_destroy(topology);
}

static void load_topology(void)
{
	if (hwloc_topology_init(&topology) != 0)
		return;
	if (hwloc_topology_load(topology) != 0) {
		hwloc_topology_destroy(topology);
		return;
	}
	topology_ok = true;
	atexit(unload_topology);
}

static void load_once(void)
{
	load_topology();
	record_allowed();
}

const char *moe_bench_level_name(enum moe_bench_level l)
{
	static const char *const names[MOE_LEVEL_COUNT] = { "L1", "L2", "L3", "DRAM" };
	return (l >= 0 && l < MOE_LEVEL_COUNT) ? names[l] : "?";
}

static void human(size_t bytes, char *out, size_t n)
{
	if (bytes >= ((size_t)1 << 30))
		snprintf(out, n, "%.1f GiB", (double)bytes / (double)((size_t)1 << 30));
	else if (bytes >= ((size_t)1 << 20) && bytes % ((size_t)1 << 20) == 0)
		snprintf(out, n, "%zu MiB", bytes >> 20);
	else
		snprintf(out, n, "%zu KiB", bytes >> 10);
}

void moe_bench_topo_get(struct moe_bench_topo *t)
{
	memset(t, 0, sizeof *t);
	pthread_once(&topology_once, load_once);
	if (!topology_ok) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		t->packages = t->numa_nodes = 1;
		t->cores = t->pus = n > 0 ? (int)n : 1;
		t->cache_bytes[2] = 32u << 20;
		t->cache_count[2] = 1;
		snprintf(t->summary, sizeof t->summary,
			 "hwloc could not load the topology: %d CPUs (sysconf), caches unknown", t->cores);
		return;
	}
	t->packages = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PACKAGE);
	t->cores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
	t->pus = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
	t->numa_nodes = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_NUMANODE);
	if (t->cores < 1)
		t->cores = t->pus > 0 ? t->pus : 1;
	static const hwloc_obj_type_t types[3] = { HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE };
	for (int i = 0; i < 3; i++) {
		int n = hwloc_get_nbobjs_by_type(topology, types[i]);
		hwloc_obj_t o = n > 0 ? hwloc_get_obj_by_type(topology, types[i], 0) : NULL;
		t->cache_count[i] = n > 0 ? n : 0;
		t->cache_bytes[i] = o ? (size_t)o->attr->cache.size : 0;
	}
	t->memory_bytes = (size_t)hwloc_get_root_obj(topology)->total_memory;

	char c[3][32], mem[32];
	for (int i = 0; i < 3; i++)
		human(t->cache_bytes[i], c[i], sizeof c[i]);
	human(t->memory_bytes, mem, sizeof mem);
	snprintf(t->summary, sizeof t->summary,
		 "%d package%s, %d cores, %d PUs; L1d %s x%d, L2 %s x%d, L3 %s x%d; %d NUMA node%s, %s",
		 t->packages, t->packages == 1 ? "" : "s", t->cores, t->pus, c[0], t->cache_count[0], c[1],
		 t->cache_count[1], c[2], t->cache_count[2], t->numa_nodes, t->numa_nodes == 1 ? "" : "s", mem);
}

size_t moe_bench_topo_llc(const struct moe_bench_topo *t)
{
	size_t llc = t->cache_bytes[2] ? t->cache_bytes[2] : t->cache_bytes[1];
	return llc > ((size_t)1 << 20) ? llc : ((size_t)1 << 20);
}

int moe_bench_cores_available(void)
{
	pthread_once(&topology_once, load_once);
	return allowed_n;
}

int moe_bench_pick_cpus(int n, int *cpus)
{
	pthread_once(&topology_once, load_once);
	for (int i = 0; i < n; i++)
		cpus[i] = allowed_pu[i % allowed_n];
	return n < allowed_n ? n : allowed_n;
}

bool moe_bench_bind_thread(int tid, char *why, size_t n)
{
	pthread_once(&topology_once, load_once);
	const int k = tid % allowed_n, pu = allowed_pu[k];
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(pu, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	if (rc != 0)
		snprintf(why, n, "not pinned (binding to PU %d failed: %s)", pu, strerror(rc));
	else if (allowed_core[k] >= 0)
		snprintf(why, n, "core %d, PU %d", allowed_core[k], pu);
	else
		snprintf(why, n, "PU %d", pu);
	return rc == 0;
}
