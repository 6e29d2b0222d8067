/* The machine context of a benchmark run, in Google Benchmark's "context" block (date, host_name,
 * executable, num_cpus, mhz_per_cpu, cpu_scaling_enabled, caches, load_avg, library_build_type)
 * plus what makes numbers comparable across machines and builds: CPU model and ISA flags, the
 * hwloc summary, compiler and flags, git revision, thread binding, counter availability and the
 * calibrated ceilings. Values read from /proc and /sys are best effort: absent files give
 * "unknown", never an error. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef MOE_BUILD_FLAGS
#define MOE_BUILD_FLAGS "unknown"
#endif
#ifndef MOE_BUILD_TYPE
#define MOE_BUILD_TYPE "unknown"
#endif
#if defined(__clang__)
#define MOE_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define MOE_COMPILER "gcc " __VERSION__
#else
#define MOE_COMPILER "unknown C compiler"
#endif
#ifndef MOE_SOURCE_DIR
#define MOE_SOURCE_DIR "."
#endif

/* The value after "key<spaces>: " of the first /proc/cpuinfo line starting with key. */
static bool cpuinfo_field(const char *key, char *out, size_t n)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[8192];
	bool found = false;
	if (!f)
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		if (strncmp(line, key, strlen(key)) != 0)
			continue;
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		colon[strcspn(colon, "\n")] = '\0';
		snprintf(out, n, "%s", colon);
		found = true;
	}
	fclose(f);
	return found;
}

void moe_bench_cpu_model(char *out, size_t n)
{
	if (!cpuinfo_field("model name", out, n))
		snprintf(out, n, "unknown CPU");
}

void moe_bench_machine_name(const struct moe_bench_topo *t, char *out, size_t n)
{
	static const char *const noise[] = { "(r)", "(tm)", " cpu", " processor", NULL };
	char model[256], clean[256];
	moe_bench_cpu_model(model, sizeof model);
	for (char *c = model; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	char *at = strchr(model, '@');
	if (at)
		*at = '\0';
	for (int i = 0; noise[i]; i++) {
		char *p;
		while ((p = strstr(model, noise[i])))
			memmove(p, p + strlen(noise[i]), strlen(p + strlen(noise[i])) + 1);
	}
	size_t k = 0;
	for (const char *c = model; *c && k + 1 < sizeof clean; c++) {
		if (isalnum((unsigned char)*c))
			clean[k++] = *c;
		else if (k > 0 && clean[k - 1] != '-')
			clean[k++] = '-';
	}
	while (k > 0 && clean[k - 1] == '-')
		k--;
	clean[k] = '\0';
	snprintf(out, n, "%s-%dc", k ? clean : "cpu", t->cores);
}

/* The ISA-relevant subset of the kernel's CPU flags. */
static json_t *isa_flags(void)
{
	static const char *const wanted[] = {
		"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
		"avx512_bf16", "avx512_vnni", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_tile", NULL,
	};
	char flags[8192];
	json_t *arr = json_array();
	if (!cpuinfo_field("flags", flags, sizeof flags))
		return arr;
	for (int i = 0; wanted[i]; i++) {
		size_t len = strlen(wanted[i]);
		for (const char *p = flags; (p = strstr(p, wanted[i])); p += len) {
			bool start = p == flags || p[-1] == ' ', end = p[len] == ' ' || p[len] == '\0';
			if (start && end) {
				json_array_append_new(arr, json_string(wanted[i]));
				break;
			}
		}
	}
	return arr;
}

static void git_revision(char *out, size_t n)
{
	snprintf(out, n, "unknown");
	FILE *p = popen("git -C '" MOE_SOURCE_DIR "' describe --always --dirty --abbrev=12 2>/dev/null", "r");
	if (!p)
		return;
	char line[128];
	if (fgets(line, sizeof line, p)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(out, n, "%s", line);
	}
	pclose(p);
}

static bool scaling_enabled(void)
{
	char gov[64] = "";
	FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "r");
	if (!f)
		return false;
	bool ok = fgets(gov, sizeof gov, f) != NULL;
	fclose(f);
	return ok && strncmp(gov, "performance", 11) != 0;
}

json_t *moe_bench_context(const struct moe_bench_topo *t, const struct moe_calibration *cal,
			  const char *binding, const char *counters_note, int threads)
{
	json_t *o = json_object();
	char buf[512];
	time_t now = time(NULL);
	strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
	json_object_set_new(o, "date", json_string(buf));
	if (gethostname(buf, sizeof buf) != 0)
		snprintf(buf, sizeof buf, "unknown");
	buf[sizeof buf - 1] = '\0';
	json_object_set_new(o, "host_name", json_string(buf));
	ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
	buf[len > 0 ? len : 0] = '\0';
	json_object_set_new(o, "executable", json_string(len > 0 ? buf : "moebench"));
	json_object_set_new(o, "num_cpus", json_integer(t->pus));
	json_object_set_new(o, "mhz_per_cpu", json_integer(cpuinfo_field("cpu MHz", buf, sizeof buf) ? atoi(buf) : 0));
	json_object_set_new(o, "cpu_scaling_enabled", json_boolean(scaling_enabled()));
	json_t *caches = json_array();
	static const char *const cache_type[3] = { "Data", "Unified", "Unified" };
	for (int i = 0; i < 3; i++) {
		if (!t->cache_bytes[i])
			continue;
		json_t *c = json_object();
		json_object_set_new(c, "type", json_string(cache_type[i]));
		json_object_set_new(c, "level", json_integer(i + 1));
		json_object_set_new(c, "size", json_integer((json_int_t)t->cache_bytes[i]));
		int count = t->cache_count[i] > 0 ? t->cache_count[i] : 1;
		json_object_set_new(c, "num_sharing", json_integer(t->pus / count > 0 ? t->pus / count : 1));
		json_array_append_new(caches, c);
	}
	json_object_set_new(o, "caches", caches);
	double load[3] = { 0, 0, 0 };
	json_t *la = json_array();
	int nl = getloadavg(load, 3);
	for (int i = 0; i < 3; i++)
		json_array_append_new(la, json_real(i < nl ? load[i] : 0));
	json_object_set_new(o, "load_avg", la);
	json_object_set_new(o, "library_build_type",
			    json_string(strcmp(MOE_BUILD_TYPE, "Debug") == 0 ? "debug" : "release"));
	json_object_set_new(o, "json_schema_version", json_integer(1));

	json_object_set_new(o, "moebench_version", json_string(MOE_VERSION_STRING));
	moe_bench_cpu_model(buf, sizeof buf);
	json_object_set_new(o, "cpu_model", json_string(buf));
	json_object_set_new(o, "isa_flags", isa_flags());
	json_object_set_new(o, "isa_hardware", json_string(moe_isa_name(moe_isa_hardware())));
	json_object_set_new(o, "isa_dispatch", json_string(moe_isa_name(moe_isa_effective())));
	moe_bench_machine_name(t, buf, sizeof buf);
	json_object_set_new(o, "machine", json_string(buf));
	json_t *hw = json_object();
	json_object_set_new(hw, "summary", json_string(t->summary));
	json_object_set_new(hw, "packages", json_integer(t->packages));
	json_object_set_new(hw, "cores", json_integer(t->cores));
	json_object_set_new(hw, "pus", json_integer(t->pus));
	json_object_set_new(hw, "numa_nodes", json_integer(t->numa_nodes));
	json_object_set_new(hw, "memory_bytes", json_integer((json_int_t)t->memory_bytes));
	json_object_set_new(o, "hwloc", hw);
	json_object_set_new(o, "compiler", json_string(MOE_COMPILER));
	json_object_set_new(o, "compiler_flags", json_string(MOE_BUILD_FLAGS));
	json_object_set_new(o, "build_type", json_string(MOE_BUILD_TYPE));
	git_revision(buf, sizeof buf);
	json_object_set_new(o, "git_revision", json_string(buf));
	json_object_set_new(o, "threads", json_integer(threads));
	json_object_set_new(o, "thread_binding", json_string(binding ? binding : "not recorded"));
	json_object_set_new(o, "hardware_counters", json_string(counters_note ? counters_note : "available"));
	if (cal && cal->count > 0)
		json_object_set_new(o, "calibration", moe_bench_calibration_json(cal));
	else
		json_object_set_new(o, "calibration", json_null());
	return o;
}
