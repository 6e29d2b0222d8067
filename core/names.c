/* Names of every public enum, and their parsers. One table per enum; lookups are shared. */
#include <ctype.h>
#include <stdio.h>

#include "moe/moe.h"

/* Case-insensitive comparison that also treats '-' and '_' as equal. */
static bool name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		int ca = tolower((unsigned char)*a), cb = tolower((unsigned char)*b);
		if (ca == '-')
			ca = '_';
		if (cb == '-')
			cb = '_';
		if (ca != cb)
			return false;
	}
	return *a == *b;
}

static const char *name_at(const char *const *names, int count, int i)
{
	return (i >= 0 && i < count && names[i]) ? names[i] : "?";
}

static enum moe_status name_parse(const char *what, const char *const *names, int count,
				  const char *name, int *out)
{
	char list[512];
	size_t used = 0;
	if (!name)
		return moe_fail(MOE_ERR_INVALID_ARG, "%s: no name given", what);
	for (int i = 0; i < count; i++) {
		if (names[i] && name_eq(names[i], name)) {
			*out = i;
			return MOE_OK;
		}
	}
	list[0] = '\0';
	for (int i = 0; i < count && used < sizeof list; i++) {
		if (!names[i])
			continue;
		int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", names[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return moe_fail(MOE_ERR_INVALID_ARG, "unknown %s '%s' (valid: %s)", what, name, list);
}

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define DEFINE_NAMES(fn_name, fn_parse, enum_type, what, table)                                  \
	const char *fn_name(enum enum_type v) { return name_at(table, COUNT(table), (int)v); }     \
	enum moe_status fn_parse(const char *name, enum enum_type *out)                            \
	{                                                                                          \
		int i = 0;                                                                         \
		enum moe_status s = name_parse(what, table, COUNT(table), name, &i);               \
		if (s == MOE_OK)                                                                   \
			*out = (enum enum_type)i;                                                  \
		return s;                                                                          \
	}

static const char *const dtype_names[] = {
	[MOE_DTYPE_NONE] = "none",       [MOE_DTYPE_F32] = "f32",         [MOE_DTYPE_BF16] = "bf16",
	[MOE_DTYPE_FP8E4M3] = "fp8e4m3", [MOE_DTYPE_FP8E5M2] = "fp8e5m2", [MOE_DTYPE_NVFP4] = "nvfp4",
	[MOE_DTYPE_MXFP4] = "mxfp4",     [MOE_DTYPE_MXFP8] = "mxfp8",
};
DEFINE_NAMES(moe_dtype_name, moe_dtype_parse, moe_dtype, "dtype", dtype_names)

static const char *const method_names[] = {
	[MOE_ROUTE_DEFAULT] = "Default",
	[MOE_ROUTE_RENORMALIZE] = "Renormalize",
	[MOE_ROUTE_DEEPSEEKV3] = "DeepSeekV3",
	[MOE_ROUTE_LLAMA4] = "Llama4",
	[MOE_ROUTE_RENORMALIZE_NAIVE] = "RenormalizeNaive",
	[MOE_ROUTE_TOPK] = "TopK",
	[MOE_ROUTE_SIGMOID_RENORM] = "SigmoidRenorm",
	[MOE_ROUTE_MINIMAX2] = "MiniMax2",
	[MOE_ROUTE_SIGMOID] = "Sigmoid",
	[MOE_ROUTE_TOPK_SIGMOID] = "TopKSigmoid",
	[MOE_ROUTE_UNSPECIFIED] = "Unspecified",
};
const char *moe_routing_method_name(enum moe_routing_method m)
{
	return name_at(method_names, COUNT(method_names), (int)m);
}
enum moe_status moe_routing_method_parse(const char *name, enum moe_routing_method *out)
{
	/* "deepseek_v3" and "DeepSeekV3" both name method 2: retry without separators. */
	char squeezed[64];
	size_t n = 0;
	int i = 0;
	for (const char *c = name ? name : ""; *c && n + 1 < sizeof squeezed; c++)
		if (*c != '_' && *c != '-')
			squeezed[n++] = *c;
	squeezed[n] = '\0';
	enum moe_status s = name_parse("routing method", method_names, MOE_ROUTE_METHOD_COUNT, squeezed, &i);
	if (s == MOE_OK)
		*out = (enum moe_routing_method)i;
	else if (name)
		moe_fail(s, "unknown routing method '%s' (valid: Default, Renormalize, DeepSeekV3, Llama4, "
			    "RenormalizeNaive, TopK, SigmoidRenorm, MiniMax2, Sigmoid, TopKSigmoid)", name);
	return s;
}

static const char *const profile_names[] = {
	[MOE_PROFILE_FLASHINFER] = "flashinfer", [MOE_PROFILE_VLLM] = "vllm", [MOE_PROFILE_HF] = "hf",
};
DEFINE_NAMES(moe_profile_name, moe_profile_parse, moe_profile, "profile", profile_names)

static const char *const scaling_names[] = {
	[MOE_SCALING_NONE] = "none",          [MOE_SCALING_PER_TENSOR] = "tensor",
	[MOE_SCALING_PER_CHANNEL] = "channel", [MOE_SCALING_BLOCK_1x128] = "1x128",
	[MOE_SCALING_BLOCK_128x128] = "128x128", [MOE_SCALING_NVFP4] = "nvfp4",
	[MOE_SCALING_MX] = "mx",
};
DEFINE_NAMES(moe_scaling_name, moe_scaling_parse, moe_scaling, "scaling", scaling_names)

static const char *const sf_layout_names[] = {
	[MOE_SF_LINEAR] = "linear", [MOE_SF_SWIZZLED_128x4] = "128x4", [MOE_SF_SWIZZLED_8x4] = "8x4",
};
DEFINE_NAMES(moe_sf_layout_name, moe_sf_layout_parse, moe_sf_layout, "scale-factor layout", sf_layout_names)

static const char *const act_quant_names[] = {
	[MOE_ACT_NONE] = "none",          [MOE_ACT_BF16] = "bf16",       [MOE_ACT_FP8_TENSOR] = "fp8",
	[MOE_ACT_FP8_1x128] = "fp8-1x128", [MOE_ACT_NVFP4] = "nvfp4",
};
DEFINE_NAMES(moe_act_quant_name, moe_act_quant_parse, moe_act_quant, "activation quantization", act_quant_names)

static const char *const op_names[] = {
	[MOE_OP_ROUTE] = "route",   [MOE_OP_NORM] = "norm",     [MOE_OP_QUANTIZE] = "quantize",
	[MOE_OP_DEQUANTIZE] = "dequantize", [MOE_OP_EXPERT] = "expert", [MOE_OP_LAYER] = "layer",
};
DEFINE_NAMES(moe_op_name, moe_op_parse, moe_op, "op", op_names)

static const char *const norm_kind_names[] = {
	[MOE_NORM_LAYERNORM] = "layernorm", [MOE_NORM_RMSNORM] = "rmsnorm",
};
const char *moe_norm_kind_name(enum moe_norm_kind k)
{
	return name_at(norm_kind_names, COUNT(norm_kind_names), (int)k);
}
