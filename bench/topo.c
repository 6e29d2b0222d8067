/* Machine topology through hwloc: cores, cache sizes, NUMA nodes, and thread pinning.
 *
 * The topology is loaded once per process (pthread_once) and shared read-only; hwloc documents
 * topology queries and binding as safe from several threads once loading is done. A thread is
 * pinned to one PU of core (tid mod cores), so that with as many threads as cores each gets its
 * own core and with more they wrap around. When hwloc cannot load or bind, sysconf supplies the
 * counts and the failure is recorded, never fatal. */
#include <errno.h>
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
	pthread_once(&topology_once, load_topology);
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

bool moe_bench_bind_thread(int tid, char *why, size_t n)
{
	pthread_once(&topology_once, load_topology);
	if (!topology_ok) {
		snprintf(why, n, "not pinned (hwloc could not load the topology)");
		return false;
	}
	int cores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
	hwloc_obj_type_t type = cores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
	int count = cores > 0 ? cores : hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
	hwloc_obj_t obj = count > 0 ? hwloc_get_obj_by_type(topology, type, (unsigned)(tid % count)) : NULL;
	if (!obj) {
		snprintf(why, n, "not pinned (no core %d in the topology)", tid);
		return false;
	}
	hwloc_bitmap_t set = hwloc_bitmap_dup(obj->cpuset);
	if (!set) {
		snprintf(why, n, "not pinned (no memory for a cpuset)");
		return false;
	}
	hwloc_bitmap_singlify(set);
	int pu = hwloc_bitmap_first(set);
	bool ok = hwloc_set_cpubind(topology, set, HWLOC_CPUBIND_THREAD) == 0;
	if (ok)
		snprintf(why, n, "core %u, PU %d", obj->logical_index, pu);
	else
		snprintf(why, n, "not pinned (binding to PU %d failed: %s)", pu, strerror(errno));
	hwloc_bitmap_free(set);
	return ok;
}
