/* ISA detection: CPUID feature bits plus the register state the OS has enabled (XCR0), capped by
 * the MOE_MAX_ISA environment variable (like oneDNN's ONEDNN_MAX_CPU_ISA). The environment is read
 * on every call; moe_backend_dispatched() reads it once, on its first call. An unknown MOE_MAX_ISA
 * value is ignored (MOE_VERBOSE=1 says so) rather than failing programs that only run kernels. */
#include <cpuid.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "moe/registry.h"

static const char *const isa_names[MOE_ISA_COUNT] = {
	[MOE_ISA_SCALAR] = "scalar", [MOE_ISA_AVX2] = "avx2",
	[MOE_ISA_AVX512] = "avx512", [MOE_ISA_AVX512_BF16] = "avx512bf16", [MOE_ISA_AVX512_AMX] = "avx512amx",
};

const char *moe_isa_name(enum moe_isa isa)
{
	return (isa >= 0 && isa < MOE_ISA_COUNT) ? isa_names[isa] : "?";
}

enum moe_status moe_isa_parse(const char *name, enum moe_isa *out)
{
	for (int i = 0; name && i < MOE_ISA_COUNT; i++) {
		if (strcmp(name, isa_names[i]) == 0) {
			*out = (enum moe_isa)i;
			return MOE_OK;
		}
	}
	return moe_fail(MOE_ERR_INVALID_ARG, "unknown ISA '%s' (valid: scalar, avx2, avx512, avx512bf16, avx512amx)",
			name ? name : "(null)");
}

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

/* Linux enables the AMX tile data state per process on request (arch_prctl ARCH_REQ_XCOMP_PERM
 * for XFEATURE_XTILEDATA); asked once, the answer kept. Elsewhere: not permitted. */
static bool amx_permitted(void)
{
#if defined(__linux__) && defined(SYS_arch_prctl)
	static atomic_int state; /* 0 unknown, 1 granted, 2 refused */
	int s = atomic_load(&state);
	if (s == 0) {
		s = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0 ? 1 : 2;
		atomic_store(&state, s);
	}
	return s == 1;
#else
	return false;
#endif
}

enum moe_isa moe_isa_hardware(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return MOE_ISA_SCALAR;
	const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
	if (!osxsave || !avx)
		return MOE_ISA_SCALAR;
	const uint64_t xcr0 = xgetbv0();
	const bool ymm_os = (xcr0 & 0x6) == 0x6;    /* SSE and AVX state */
	const bool zmm_os = (xcr0 & 0xe6) == 0xe6;  /* plus opmask, ZMM_Hi256, Hi16_ZMM */
	if (!ymm_os || __get_cpuid_max(0, NULL) < 7)
		return MOE_ISA_SCALAR;
	__cpuid_count(7, 0, a, b, c, d);
	const bool avx2 = b & (1u << 5);
	const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));
	/* Leaf 7 sub-leaf 1 exists only when sub-leaf 0 reports it (EAX = highest sub-leaf). */
	unsigned a1 = 0, b1, c1, d1;
	if (a >= 1)
		__cpuid_count(7, 1, a1, b1, c1, d1);
	const bool bf16 = a1 & (1u << 5);
	const bool amx = (d & (1u << 22)) && (d & (1u << 24)) && (xcr0 & 0x60000) == 0x60000; /* AMX-BF16, -TILE; XTILECFG, XTILEDATA */
	if (!(avx2 && fma && f16c))
		return MOE_ISA_SCALAR;
	if (!(avx512 && zmm_os))
		return MOE_ISA_AVX2;
	if (!bf16)
		return MOE_ISA_AVX512;
	return amx && amx_permitted() ? MOE_ISA_AVX512_AMX : MOE_ISA_AVX512_BF16;
}

enum moe_isa moe_isa_effective(void)
{
	enum moe_isa hw = moe_isa_hardware(), cap;
	const char *env = getenv("MOE_MAX_ISA");
	if (env && *env && moe_isa_parse(env, &cap) == MOE_OK && cap < hw)
		return cap;
	return hw;
}
