/* Unit tests of moe_core: status messages, enum names and parsers, bf16 conversion. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "moe/moe.h"

START_TEST(test_fail_records_message)
{
	moe_clear_error();
	ck_assert_str_eq(moe_last_error(), "");
	enum moe_status s = moe_fail(MOE_ERR_INVALID_ARG, "route: K=%d > E=%d", 9, 8);
	ck_assert_int_eq(s, MOE_ERR_INVALID_ARG);
	ck_assert_str_eq(moe_last_error(), "route: K=9 > E=8");
	ck_assert_str_eq(moe_status_name(MOE_ERR_ABI), "ABI mismatch");
}
END_TEST

/* The wrapping idiom passes the message buffer back in as an argument. */
START_TEST(test_fail_wraps_inner_message)
{
	moe_fail(MOE_ERR_FORMAT, "tensor %s: shape [%d]", "model.norm.weight", 7);
	enum moe_status s = moe_fail(MOE_ERR_FORMAT, "layer %d: %s", 3, moe_last_error());
	ck_assert_int_eq(s, MOE_ERR_FORMAT);
	ck_assert_str_eq(moe_last_error(), "layer 3: tensor model.norm.weight: shape [7]");
	s = moe_fail(MOE_ERR_IO, "%s (again)", moe_last_error());
	ck_assert_str_eq(moe_last_error(), "layer 3: tensor model.norm.weight: shape [7] (again)");
}
END_TEST

START_TEST(test_names_round_trip)
{
	enum moe_routing_method m;
	ck_assert_int_eq(moe_routing_method_parse("deepseek_v3", &m), MOE_OK);
	ck_assert_int_eq(m, MOE_ROUTE_DEEPSEEKV3);
	ck_assert_int_eq(moe_routing_method_parse("topksigmoid", &m), MOE_OK);
	ck_assert_int_eq(m, 9);
	ck_assert_int_eq(moe_routing_method_parse("Unspecified", &m), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "Unspecified"));
	ck_assert_str_eq(moe_routing_method_name(MOE_ROUTE_MINIMAX2), "MiniMax2");

	enum moe_dtype t;
	ck_assert_int_eq(moe_dtype_parse("BF16", &t), MOE_OK);
	ck_assert_int_eq(t, MOE_DTYPE_BF16);
	ck_assert_int_eq(moe_dtype_parse("fp16", &t), MOE_ERR_INVALID_ARG);
	ck_assert_ptr_nonnull(strstr(moe_last_error(), "nvfp4"));

	enum moe_op op;
	ck_assert_int_eq(moe_op_parse("expert", &op), MOE_OK);
	ck_assert_int_eq(op, MOE_OP_EXPERT);
	ck_assert_str_eq(moe_scaling_name(MOE_SCALING_BLOCK_128x128), "128x128");
	ck_assert_str_eq(moe_profile_name((enum moe_profile)7), "?");
}
END_TEST

START_TEST(test_bf16_rounding)
{
	/* 1 + 2^-8 is exactly halfway between bf16 1.0 and 1 + 2^-7: ties to even -> 1.0. */
	ck_assert_uint_eq(moe_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
	/* 1 + 3*2^-8 is halfway between 1+2^-7 (odd mantissa) and 1+2^-6: ties to even -> up. */
	ck_assert_uint_eq(moe_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
	/* just above the midpoint rounds up */
	ck_assert_uint_eq(moe_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
	/* the largest finite float rounds to +inf in bf16 */
	ck_assert_uint_eq(moe_f32_to_bf16(3.4028235e38f), 0x7f80);
	ck_assert_uint_eq(moe_f32_to_bf16(-0.0f), 0x8000);
	/* NaN stays NaN with its sign */
	moe_bf16 n = moe_f32_to_bf16(-NAN);
	ck_assert(isnan(moe_bf16_to_f32(n)));
	ck_assert_uint_eq(n & 0x8000u, 0x8000u);
	ck_assert_float_eq(moe_bf16_to_f32(0x4049), 3.140625f);
}
END_TEST

START_TEST(test_alloc_large)
{
	/* small: 64-byte aligned; from 2 MiB on: 2 MiB aligned (huge pages need it); zero bytes: NULL */
	ck_assert_ptr_null(moe_alloc_large(0));
	const size_t sizes[] = { 1, 100, (2u << 20) - 1, 2u << 20, (5u << 20) + 3 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		unsigned char *p = moe_calloc_large(sizes[i]);
		ck_assert_ptr_nonnull(p);
		const uintptr_t align = sizes[i] >= (2u << 20) ? (2u << 20) : 64;
		ck_assert_uint_eq((uintptr_t)p % align, 0);
		ck_assert_uint_eq(p[0], 0);
		ck_assert_uint_eq(p[sizes[i] - 1], 0);
		p[sizes[i] - 1] = 7; /* the whole size is writable (ASan checks the bound) */
		free(p);
	}
	ck_assert_ptr_null(moe_alloc_large(SIZE_MAX - 16));
}
END_TEST

START_TEST(test_backend_provides)
{
	struct moe_backend b = { .abi_version = MOE_BACKEND_ABI_VERSION, .name = "t" };
	ck_assert(!moe_backend_provides(&b, MOE_OP_ROUTE, NULL));
	b.norm = moe_norm__ref;
	ck_assert(moe_backend_provides(&b, MOE_OP_NORM, NULL));
	ck_assert(!moe_backend_provides(NULL, MOE_OP_NORM, NULL));
}
END_TEST

/* moe_norm__ref is only taken by address above; this module does not link the reference. */
void moe_norm__ref(const struct moe_norm_params *p, const void *x, const void *w, void *y)
{
	abort();
}

int main(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_fail_records_message);
	tcase_add_test(tc, test_fail_wraps_inner_message);
	tcase_add_test(tc, test_names_round_trip);
	tcase_add_test(tc, test_bf16_rounding);
	tcase_add_test(tc, test_backend_provides);
	tcase_add_test(tc, test_alloc_large);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
