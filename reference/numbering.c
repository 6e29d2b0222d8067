/* The engines' integer numberings of the routing-method enum, and the translation between them and
 * ours (our numbering is flashinfer's from v0.6.18rc4 on).
 *
 * Facts: docs/routing.md, "Enum numbering". One table row per numbering gives the
 * engine's integer for each of our methods (or none), its Unspecified value, and the values that
 * name something we cannot run. Translation is table lookup only.
 *
 * Decisions:
 * - flashinfer <= v0.6.7 declares Default = 0 but its routing kernels do not implement it. A
 *   numbering exists to drive an engine, so Default is reported as unsupported there in both
 *   directions, with a message that says so, rather than translated into a request the engine
 *   rejects at run time.
 * - Engine-only values (vLLM's DeepseekV4/Custom/Simulated, TRT-LLM's AdaptiveK) are
 *   MOE_ERR_UNSUPPORTED and named; any other unknown integer is MOE_ERR_INVALID_ARG.
 * - Unspecified translates to the engine's Unspecified and back (MOE_OK both ways).
 * - Version strings are a subset of PEP 440: [v]N[.N[.N]] then optional {a|b|rc}N, .postN, .devN
 *   and a +local label (ignored), ordered as pip orders them. The first versions of each numbering
 *   are v0.6.8, v0.6.11 and v0.6.18rc4; the spec names final releases for the first two, so
 *   pre-releases of 0.6.8 and 0.6.11 (0.6.8rc1 < 0.6.8) keep the older numbering. Anything older
 *   than 0.6.8 uses the 0.6.7 numbering and anything newer than 0.6.18rc4 the newest one. */
#include <limits.h>

#include "moe/classify.h"

enum { ABSENT = -1, MAX_EXTRA = 3 };

struct engine_only {
	int32_t value;
	int method; /* our method the value names, or -1 when we have none */
	const char *what;
};

struct numbering {
	const char *name;
	int32_t value[MOE_ROUTE_METHOD_COUNT]; /* indexed by our method; ABSENT when the engine lacks it */
	int32_t unspecified;
	struct engine_only extra[MAX_EXTRA];   /* values naming nothing we run; what == NULL ends */
};

/* Columns: Default Renormalize DeepSeekV3 Llama4 RenormalizeNaive TopK SigmoidRenorm MiniMax2
 * Sigmoid TopKSigmoid. */
static const struct numbering numberings[MOE_NUM_COUNT] = {
	[MOE_NUM_FLASHINFER_0_6_7] = {
		"flashinfer-0.6.7",
		{ ABSENT, 1, 2, 3, 4, 5, ABSENT, ABSENT, ABSENT, ABSENT }, 6,
		{ { 0, MOE_ROUTE_DEFAULT, "Default, declared but not implemented before flashinfer v0.6.8" } },
	},
	[MOE_NUM_FLASHINFER_0_6_8] = {
		"flashinfer-0.6.8",
		{ 0, 1, 2, 3, 4, 5, 6, 7, ABSENT, ABSENT }, 8,
	},
	[MOE_NUM_FLASHINFER_0_6_11] = {
		"flashinfer-0.6.11",
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, ABSENT }, 9,
	},
	[MOE_NUM_FLASHINFER_0_6_18] = {
		"flashinfer-0.6.18",
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, 10,
	},
	[MOE_NUM_VLLM] = {
		"vllm",
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, ABSENT }, 9,
		{ { 100, -1, "vLLM's DeepseekV4 (sqrtsoftplus routing, never passed to flashinfer)" },
		  { 101, -1, "vLLM's Custom (a model's own routing function)" },
		  { 102, -1, "vLLM's Simulated (synthetic routing for benchmarks)" } },
	},
	[MOE_NUM_SGLANG] = {
		"sglang",
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, ABSENT }, 9,
	},
	[MOE_NUM_TRTLLM] = {
		"trtllm",
		{ 0, 1, 2, 3, 4, ABSENT, ABSENT, 5, ABSENT, ABSENT }, 6,
		{ { 7, -1, "TRT-LLM's AdaptiveK (per-token expert count)" } },
	},
};

static bool numbering_ok(enum moe_numbering n)
{
	return (int)n >= 0 && (int)n < MOE_NUM_COUNT;
}

const char *moe_numbering_name(enum moe_numbering n)
{
	return numbering_ok(n) ? numberings[n].name : "?";
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Case-insensitive, '-' and '_' equal; returns the rest of s after prefix, or NULL. */
static const char *skip_prefix(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++) {
		char a = lower(*s), b = lower(*prefix);
		if (a == '_')
			a = '-';
		if (b == '_')
			b = '-';
		if (a != b)
			return NULL;
	}
	return s;
}

enum moe_status moe_numbering_parse(const char *name, enum moe_numbering *out)
{
	if (!name || !out)
		return moe_fail(MOE_ERR_INVALID_ARG, "numbering parse: %s is NULL", name ? "out" : "name");
	for (int i = 0; i < MOE_NUM_COUNT; i++) {
		const char *rest = skip_prefix(name, numberings[i].name);
		if (rest && *rest == '\0') {
			*out = (enum moe_numbering)i;
			return MOE_OK;
		}
	}
	const char *version = skip_prefix(name, "flashinfer-");
	if (version && moe_numbering_for_flashinfer_version(version, out) == MOE_OK)
		return MOE_OK;
	return moe_fail(MOE_ERR_INVALID_ARG,
			"unknown numbering '%s' (valid: flashinfer-<version> such as flashinfer-0.6.9 or "
			"flashinfer-v0.6.18rc4, flashinfer-0.6.7, flashinfer-0.6.8, flashinfer-0.6.11, "
			"flashinfer-0.6.18, vllm, sglang, trtllm)", name);
}

/* ---- versions ---- */

enum pre_kind { PRE_DEV_ONLY = -1, PRE_A = 0, PRE_B = 1, PRE_RC = 2, PRE_NONE = 3 };

struct version {
	long release[3];
	enum pre_kind pre;
	long pre_num;
	long post; /* -1: none */
	long dev;  /* LONG_MAX: none, so that X.devN < X */
};

/* Reads 1..9 decimal digits (leading zeros allowed, as pip allows them). */
static bool read_number(const char **s, long *out)
{
	long v = 0;
	int n = 0;
	while (**s >= '0' && **s <= '9') {
		if (++n > 9)
			return false;
		v = v * 10 + (**s - '0');
		(*s)++;
	}
	*out = v;
	return n > 0;
}

static bool read_tag(const char **s, const char *tag, long *num)
{
	const char *rest = skip_prefix(*s, tag);
	if (!rest)
		return false;
	*s = rest;
	return read_number(s, num);
}

static bool parse_version(const char *s, struct version *v)
{
	*v = (struct version){ .pre = PRE_NONE, .post = -1, .dev = LONG_MAX };
	if (*s == 'v' || *s == 'V')
		s++;
	if (!read_number(&s, &v->release[0]))
		return false;
	for (int i = 1; i < 3 && s[0] == '.' && s[1] >= '0' && s[1] <= '9'; i++) {
		s++;
		if (!read_number(&s, &v->release[i]))
			return false;
	}
	if (lower(s[0]) == 'r' && lower(s[1]) == 'c') {
		v->pre = PRE_RC;
		if (!read_tag(&s, "rc", &v->pre_num))
			return false;
	} else if (lower(s[0]) == 'a' || lower(s[0]) == 'b') {
		v->pre = lower(s[0]) == 'a' ? PRE_A : PRE_B;
		s++;
		if (!read_number(&s, &v->pre_num))
			return false;
	}
	if (skip_prefix(s, ".post") && !read_tag(&s, ".post", &v->post))
		return false;
	if (skip_prefix(s, ".dev") && !read_tag(&s, ".dev", &v->dev))
		return false;
	if (v->dev != LONG_MAX && v->pre == PRE_NONE && v->post < 0)
		v->pre = PRE_DEV_ONLY;
	if (*s == '+') {
		if (!*++s)
			return false;
		for (; *s; s++) {
			char c = lower(*s);
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'))
				return false;
		}
	}
	return *s == '\0';
}

static int cmp_long(long a, long b)
{
	return (a > b) - (a < b);
}

static int version_cmp(const struct version *a, const struct version *b)
{
	int c = 0;
	for (int i = 0; i < 3 && !c; i++)
		c = cmp_long(a->release[i], b->release[i]);
	if (!c)
		c = cmp_long(a->pre, b->pre);
	if (!c)
		c = cmp_long(a->pre_num, b->pre_num);
	if (!c)
		c = cmp_long(a->post, b->post);
	if (!c)
		c = cmp_long(a->dev, b->dev);
	return c;
}

enum moe_status moe_numbering_for_flashinfer_version(const char *version, enum moe_numbering *out)
{
	static const struct {
		struct version first;
		enum moe_numbering n;
	} firsts[] = {
		{ { { 0, 6, 18 }, PRE_RC, 4, -1, LONG_MAX }, MOE_NUM_FLASHINFER_0_6_18 },
		{ { { 0, 6, 11 }, PRE_NONE, 0, -1, LONG_MAX }, MOE_NUM_FLASHINFER_0_6_11 },
		{ { { 0, 6, 8 }, PRE_NONE, 0, -1, LONG_MAX }, MOE_NUM_FLASHINFER_0_6_8 },
	};
	struct version v;
	if (!version || !out)
		return moe_fail(MOE_ERR_INVALID_ARG, "flashinfer version: %s is NULL", version ? "out" : "version");
	if (!parse_version(version, &v))
		return moe_fail(MOE_ERR_INVALID_ARG,
				"flashinfer version '%s' not understood (expected [v]MAJOR[.MINOR[.PATCH]]"
				"[aN|bN|rcN][.postN][.devN][+local], e.g. 0.6.9 or v0.6.18rc4)", version);
	for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
		if (version_cmp(&v, &firsts[i].first) >= 0) {
			*out = firsts[i].n;
			return MOE_OK;
		}
	}
	*out = MOE_NUM_FLASHINFER_0_6_7;
	return MOE_OK;
}

/* ---- translation ---- */

static bool method_ok(enum moe_routing_method m)
{
	return (int)m >= 0 && (int)m <= MOE_ROUTE_UNSPECIFIED;
}

enum moe_status moe_method_to_engine(enum moe_numbering n, enum moe_routing_method m, int32_t *value)
{
	if (!value)
		return moe_fail(MOE_ERR_INVALID_ARG, "method to engine: value is NULL");
	if (!numbering_ok(n))
		return moe_fail(MOE_ERR_INVALID_ARG, "method to engine: numbering %d out of range [0, %d)",
				(int)n, MOE_NUM_COUNT);
	if (!method_ok(m))
		return moe_fail(MOE_ERR_INVALID_ARG, "method to engine: routing method %d out of range [0, %d]",
				(int)m, MOE_ROUTE_UNSPECIFIED);
	const struct numbering *t = &numberings[n];
	if (m == MOE_ROUTE_UNSPECIFIED) {
		*value = t->unspecified;
		return MOE_OK;
	}
	if (t->value[m] == ABSENT) {
		for (const struct engine_only *e = t->extra; e < t->extra + MAX_EXTRA && e->what; e++)
			if (e->method == (int)m)
				return moe_fail(MOE_ERR_UNSUPPORTED, "method to engine: %s has no usable %s "
						"(value %d is %s)", t->name, moe_routing_method_name(m),
						(int)e->value, e->what);
		return moe_fail(MOE_ERR_UNSUPPORTED, "method to engine: numbering %s has no routing method %s",
				t->name, moe_routing_method_name(m));
	}
	*value = t->value[m];
	return MOE_OK;
}

enum moe_status moe_method_from_engine(enum moe_numbering n, int32_t value, enum moe_routing_method *out)
{
	if (!out)
		return moe_fail(MOE_ERR_INVALID_ARG, "method from engine: out is NULL");
	if (!numbering_ok(n))
		return moe_fail(MOE_ERR_INVALID_ARG, "method from engine: numbering %d out of range [0, %d)",
				(int)n, MOE_NUM_COUNT);
	const struct numbering *t = &numberings[n];
	if (value == t->unspecified) {
		*out = MOE_ROUTE_UNSPECIFIED;
		return MOE_OK;
	}
	/* ABSENT marks a method the engine lacks, never a value it uses */
	for (int m = 0; m < MOE_ROUTE_METHOD_COUNT && value != ABSENT; m++) {
		if (t->value[m] == value) {
			*out = (enum moe_routing_method)m;
			return MOE_OK;
		}
	}
	for (const struct engine_only *e = t->extra; e < t->extra + MAX_EXTRA && e->what; e++)
		if (e->value == value)
			return moe_fail(MOE_ERR_UNSUPPORTED, "method from engine: %s value %d is %s, which has no "
					"counterpart here", t->name, (int)value, e->what);
	return moe_fail(MOE_ERR_INVALID_ARG, "method from engine: %s has no routing method with value %d",
			t->name, (int)value);
}
