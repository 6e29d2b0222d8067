/* Unit tests of verify/safetensors.c: round trips of every dtype with metadata, empty and scalar
 * tensors; files written byte by byte here from the format description (so the expected layout does
 * not come from the writer); every malformed variant the reader must refuse with MOE_ERR_FORMAT;
 * the writer's argument checks and atomic replacement; and a seeded mutation loop asserting that a
 * damaged file is either read or refused, never read out of bounds (run it under ASan/valgrind). */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

static char dir[] = "/tmp/moe_test_st_XXXXXX";

static void make_dir(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX];
	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			unlink(p);
		}
	}
	if (d)
		closedir(d);
	rmdir(dir);
	strcpy(dir, "/tmp/moe_test_st_XXXXXX");
}

static const char *in_dir(const char *name)
{
	static char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return p;
}

static void put_file(const char *path, const void *bytes, size_t n)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
}

/* A file from its parts as the format defines it: 8-byte little-endian header length, the header
 * text, the data area. hlen_override replaces the length field when nonzero. */
static size_t build(unsigned char *out, size_t cap, const char *json, const void *data, size_t ndata,
		    uint64_t hlen_override)
{
	size_t n = strlen(json);
	ck_assert_uint_le(8 + n + ndata, cap);
	uint64_t h = hlen_override ? hlen_override : n;
	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)(h >> (8 * i));
	memcpy(out + 8, json, n);
	if (ndata)
		memcpy(out + 8 + n, data, ndata);
	return 8 + n + ndata;
}

/* Reads a hand-built file expecting MOE_ERR_FORMAT and a message containing `want`. */
static void expect_malformed(const char *json, const void *data, size_t ndata, uint64_t hlen, const char *want)
{
	unsigned char buf[4096];
	size_t n = build(buf, sizeof buf, json, data, ndata, hlen);
	const char *path = in_dir("bad.safetensors");
	put_file(path, buf, n);
	struct moe_st_file f;
	moe_clear_error();
	ck_assert_int_eq(moe_st_read(path, &f), MOE_ERR_FORMAT);
	ck_assert_msg(strstr(moe_last_error(), want), "for %s: message '%s' lacks '%s'", json,
		      moe_last_error(), want);
	ck_assert_msg(strstr(moe_last_error(), path), "message '%s' lacks the path", moe_last_error());
	ck_assert_uint_eq(f.ntensors, 0);
	ck_assert_ptr_null(f.priv);
	moe_st_free(&f);
}

START_TEST(test_dtype_names)
{
	static const char *const names[] = { "F32", "F64", "BF16", "I32", "I64", "U8", "U16" };
	static const size_t sizes[] = { 4, 8, 2, 4, 8, 1, 2 };
	for (int t = MOE_ST_F32; t <= MOE_ST_U16; t++) {
		ck_assert_str_eq(moe_st_dtype_name((enum moe_st_dtype)t), names[t]);
		ck_assert_uint_eq(moe_st_dtype_size((enum moe_st_dtype)t), sizes[t]);
	}
	ck_assert_str_eq(moe_st_dtype_name((enum moe_st_dtype)7), "?");
	ck_assert_uint_eq(moe_st_dtype_size((enum moe_st_dtype)-1), 0);
}
END_TEST

START_TEST(test_round_trip_every_dtype)
{
	make_dir();
	float f32[6];
	double f64[3];
	uint16_t bf16[4];
	int32_t i32[5];
	int64_t i64[2] = { INT64_MIN, INT64_MAX };
	uint8_t u8[7];
	uint16_t u16[3] = { 0, 0x8001, 0xffff };
	for (int i = 0; i < 6; i++)
		f32[i] = (float)i * -1.25f;
	for (int i = 0; i < 3; i++)
		f64[i] = 1.0 / (i + 3);
	for (int i = 0; i < 4; i++)
		bf16[i] = (uint16_t)(0x3f80 + i);
	for (int i = 0; i < 5; i++)
		i32[i] = -7 * i;
	for (int i = 0; i < 7; i++)
		u8[i] = (uint8_t)(250 + i);
	float scalar = 42.0f;
	struct moe_st_tensor t[] = {
		{ "w.f32", MOE_ST_F32, 2, { 2, 3 }, f32, sizeof f32 },
		{ "w.f64", MOE_ST_F64, 1, { 3 }, f64, sizeof f64 },
		{ "w.bf16", MOE_ST_BF16, 3, { 1, 2, 2 }, bf16, sizeof bf16 },
		{ "empty", MOE_ST_F32, 2, { 0, 5 }, NULL, 0 },
		{ "w.i32", MOE_ST_I32, 4, { 5, 1, 1, 1 }, i32, sizeof i32 },
		{ "w.i64", MOE_ST_I64, 1, { 2 }, i64, sizeof i64 },
		{ "w.u8", MOE_ST_U8, 1, { 7 }, u8, sizeof u8 },
		{ "w.u16", MOE_ST_U16, 1, { 3 }, u16, sizeof u16 },
		{ "scalar", MOE_ST_F32, 0, { 0 }, &scalar, sizeof scalar },
	};
	const size_t nt = sizeof t / sizeof t[0];
	struct moe_st_meta meta[] = { { "op", "route" }, { "seed", "1234" }, { "empty", "" } };
	const char *path = in_dir("rt.safetensors");
	ck_assert_int_eq(moe_st_write(path, t, nt, meta, 3), MOE_OK);

	/* Layout from the format: length field + header ends on a multiple of 8, padding is spaces,
	 * and the data area is the tensors back to back, in the order given. */
	FILE *fp = fopen(path, "rb");
	ck_assert_ptr_nonnull(fp);
	unsigned char raw[2048];
	size_t size = fread(raw, 1, sizeof raw, fp);
	fclose(fp);
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | raw[i];
	ck_assert_uint_eq((8 + hlen) % 8, 0);
	ck_assert_int_eq(raw[8], '{');
	size_t data_bytes = 0;
	for (size_t i = 0; i < nt; i++)
		data_bytes += t[i].nbytes;
	/* 24 + 24 + 8 + 0 + 20 + 16 + 7 + 6 + 4 = 109 */
	ck_assert_uint_eq(data_bytes, 109);
	ck_assert_uint_eq(size, 8 + hlen + 109);
	ck_assert_int_eq(memcmp(raw + 8 + hlen, f32, sizeof f32), 0);
	ck_assert_int_eq(memcmp(raw + size - 4, &scalar, 4), 0);

	struct moe_st_file f;
	ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
	ck_assert_uint_eq(f.ntensors, nt);
	for (size_t i = 0; i < nt; i++) {
		const struct moe_st_tensor *r = moe_st_find(&f, t[i].name);
		ck_assert_ptr_nonnull(r);
		ck_assert_str_eq(r->name, t[i].name);
		ck_assert_int_eq(r->dtype, t[i].dtype);
		ck_assert_int_eq(r->ndim, t[i].ndim);
		for (int d = 0; d < t[i].ndim; d++)
			ck_assert_int_eq(r->shape[d], t[i].shape[d]);
		ck_assert_uint_eq(r->nbytes, t[i].nbytes);
		ck_assert_ptr_nonnull(r->data);
		ck_assert_uint_eq((uintptr_t)r->data % moe_st_dtype_size(r->dtype), 0);
		if (t[i].nbytes)
			ck_assert_int_eq(memcmp(r->data, t[i].data, t[i].nbytes), 0);
	}
	/* Data order is the order written, the empty tensor included. */
	ck_assert_str_eq(f.tensors[0].name, "w.f32");
	ck_assert_str_eq(f.tensors[3].name, "empty");
	ck_assert_str_eq(f.tensors[8].name, "scalar");
	ck_assert_ptr_null(moe_st_find(&f, "missing"));
	ck_assert_uint_eq(f.nmeta, 3);
	ck_assert_str_eq(moe_st_meta_get(&f, "op"), "route");
	ck_assert_str_eq(moe_st_meta_get(&f, "seed"), "1234");
	ck_assert_str_eq(moe_st_meta_get(&f, "empty"), "");
	ck_assert_ptr_null(moe_st_meta_get(&f, "absent"));
	moe_st_free(&f);
	ck_assert_ptr_null(f.tensors);
	moe_st_free(&f);
	remove_dir();
}
END_TEST

START_TEST(test_hand_written_file)
{
	make_dir();
	/* Two tensors listed out of data order, as the format allows, plus metadata. Data area:
	 * bytes 0..3 hold F32 1.5 = 0x3fc00000 (little-endian 00 00 c0 3f),
	 * bytes 4..7 hold U16 [0x0102, 0x0304] (02 01 04 03). */
	const char *json = "{\"b\":{\"dtype\":\"U16\",\"shape\":[2],\"data_offsets\":[4,8]},"
			   "\"a\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
			   "\"__metadata__\":{\"format\":\"pt\"}}   ";
	const unsigned char data[] = { 0x00, 0x00, 0xc0, 0x3f, 0x02, 0x01, 0x04, 0x03 };
	unsigned char buf[512];
	size_t n = build(buf, sizeof buf, json, data, sizeof data, 0);
	const char *path = in_dir("hand.safetensors");
	put_file(path, buf, n);

	struct moe_st_file f;
	ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
	ck_assert_uint_eq(f.ntensors, 2);
	ck_assert_str_eq(f.tensors[0].name, "a"); /* data order, not header order */
	ck_assert_str_eq(f.tensors[1].name, "b");
	ck_assert_int_eq(f.tensors[0].dtype, MOE_ST_F32);
	ck_assert_int_eq(f.tensors[0].ndim, 2);
	ck_assert_float_eq(*(const float *)f.tensors[0].data, 1.5f);
	const uint16_t *u = f.tensors[1].data;
	ck_assert_uint_eq(u[0], 0x0102);
	ck_assert_uint_eq(u[1], 0x0304);
	ck_assert_str_eq(moe_st_meta_get(&f, "format"), "pt");
	moe_st_free(&f);

	/* An F32 at data offset 1 is legal but misaligned: it must come back aligned and intact.
	 * 2.0f = 0x40000000, little-endian 00 00 00 40. */
	const char *json2 = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
			    "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1,5]}}";
	const unsigned char data2[] = { 0xaa, 0x00, 0x00, 0x00, 0x40 };
	n = build(buf, sizeof buf, json2, data2, sizeof data2, 0);
	put_file(path, buf, n);
	ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
	const struct moe_st_tensor *x = moe_st_find(&f, "x");
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq((uintptr_t)x->data % 4, 0);
	ck_assert_float_eq(*(const float *)x->data, 2.0f);
	ck_assert_uint_eq(*(const uint8_t *)moe_st_find(&f, "pad")->data, 0xaa);
	moe_st_free(&f);

	/* No tensors, no data: a valid (empty) file. */
	n = build(buf, sizeof buf, "{}", NULL, 0, 0);
	put_file(path, buf, n);
	ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
	ck_assert_uint_eq(f.ntensors, 0);
	ck_assert_uint_eq(f.nmeta, 0);
	moe_st_free(&f);
	remove_dir();
}
END_TEST

START_TEST(test_malformed)
{
	make_dir();
	const unsigned char d8[8] = { 0 };
	const unsigned char d16[16] = { 0 };
	const char *one = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

	/* the file is shorter than the length field */
	const char *path = in_dir("short.safetensors");
	put_file(path, "\x02\x00\x00", 3);
	struct moe_st_file f;
	ck_assert_int_eq(moe_st_read(path, &f), MOE_ERR_FORMAT);
	ck_assert(strstr(moe_last_error(), "too short"));

	/* huge header length (2^63) and one merely longer than the file */
	expect_malformed(one, d8, 8, 1ull << 63, "exceeds the format's limit");
	expect_malformed(one, d8, 8, 1000, "header length 1000 exceeds the");
	/* the control: the same file with the right length reads */
	unsigned char buf[512];
	size_t n = build(buf, sizeof buf, one, d8, 8, 0);
	put_file(path, buf, n);
	ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
	moe_st_free(&f);

	expect_malformed("{\"a\":{\"dtype\":\"F32\",", d8, 8, 0, "not valid JSON");
	expect_malformed("[1, 2]", NULL, 0, 0, "not an object");
	expect_malformed("{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", d8, 8, 0,
			 "dtype 'F16'");
	expect_malformed("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", d8, 8, 0,
			 "no string \"dtype\"");
	expect_malformed("{\"a\":[1]}", d8, 8, 0, "not a JSON object");
	/* 3 F32 = 12 bytes, but the range holds 8 */
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d8, 8, 0,
			 "needs 12 bytes");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d8, 8, 0,
			 "run past the 8-byte data area");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", d16, 12, 0,
			 "overlap the tensor before it");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", d16, 16, 0,
			 "bytes [8, 12) of the data area belong to no tensor");
	expect_malformed(one, d16, 16, 0, "bytes [8, 16) of the data area belong to no tensor");
	expect_malformed("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", d8, 8, 0,
			 "end before they begin");
	/* 2^32 * 2^32 elements overflow 64 bits; 2^31 * 2^31 = 2^62 elements fit, 2^62 * 4 bytes do not */
	expect_malformed("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
			 d8, 8, 0, "more elements than 64 bits");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,8]}}",
			 d8, 8, 0, "more bytes than 64 bits");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", d8, 8, 0,
			 "shape[0] is not a non-negative integer");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", d8, 8, 0,
			 "shape[0] is not a non-negative integer");
	expect_malformed("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,8],\"data_offsets\":[0,8]}}", d8, 8, 0,
			 "has 5 dimensions");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", d8, 8, 0,
			 "data_offsets");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", d8, 8, 0, "no \"shape\" array");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
			 "\"__metadata__\":{\"n\":3}}", d8, 8, 0, "metadata 'n' is not a string");
	expect_malformed("{\"__metadata__\":[\"x\"]}", NULL, 0, 0, "\"__metadata__\" is not a JSON object");
	expect_malformed("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d8, 8, 0, "duplicate");
	char longname[256];
	snprintf(longname, sizeof longname, "{\"%0100d\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 7);
	expect_malformed(longname, NULL, 0, 0, "is 100 bytes, at most 95");
	/* header padding must be whitespace, not NULs or junk */
	expect_malformed("{}\x01\x01", NULL, 0, 0, "not valid JSON");

	/* not a file at all */
	ck_assert_int_eq(moe_st_read(in_dir("missing.safetensors"), &f), MOE_ERR_IO);
	ck_assert(strstr(moe_last_error(), "cannot open"));
	ck_assert_int_eq(moe_st_read(dir, &f), MOE_ERR_IO);
	ck_assert(strstr(moe_last_error(), "not a regular file"));
	ck_assert_int_eq(moe_st_read(NULL, &f), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_st_read(path, NULL), MOE_ERR_INVALID_ARG);
	remove_dir();
}
END_TEST

START_TEST(test_write_arguments)
{
	make_dir();
	float x[4] = { 1, 2, 3, 4 };
	const char *path = in_dir("w.safetensors");
	struct moe_st_tensor t = { "x", MOE_ST_F32, 1, { 4 }, x, sizeof x };
	struct moe_st_tensor two[2] = { t, t };
	ck_assert_int_eq(moe_st_write(path, two, 2, NULL, 0), MOE_ERR_INVALID_ARG);
	ck_assert(strstr(moe_last_error(), "'x' given twice"));

	struct moe_st_tensor bad = t;
	bad.nbytes = 12; /* 4 F32 are 16 bytes */
	ck_assert_int_eq(moe_st_write(path, &bad, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	ck_assert(strstr(moe_last_error(), "4 elements of F32 but nbytes = 12"));
	bad = t;
	bad.ndim = 5;
	ck_assert_int_eq(moe_st_write(path, &bad, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	bad = t;
	bad.shape[0] = -4;
	ck_assert_int_eq(moe_st_write(path, &bad, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	bad = t;
	bad.data = NULL;
	ck_assert_int_eq(moe_st_write(path, &bad, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	bad = t;
	bad.dtype = (enum moe_st_dtype)9;
	ck_assert_int_eq(moe_st_write(path, &bad, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	bad = t;
	strcpy(bad.name, "__metadata__");
	ck_assert_int_eq(moe_st_write(path, &bad, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	bad = t;
	memset(bad.name, 'n', sizeof bad.name);
	ck_assert_int_eq(moe_st_write(path, &bad, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	struct moe_st_meta m[2] = { { "k", "1" }, { "k", "2" } };
	ck_assert_int_eq(moe_st_write(path, &t, 1, m, 2), MOE_ERR_INVALID_ARG);
	ck_assert(strstr(moe_last_error(), "'k' given twice"));
	m[1].key = NULL;
	ck_assert_int_eq(moe_st_write(path, &t, 1, m, 2), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_st_write(path, NULL, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	ck_assert_int_eq(moe_st_write("", &t, 1, NULL, 0), MOE_ERR_INVALID_ARG);
	/* nothing was left behind by the refused writes */
	ck_assert_int_eq(access(path, F_OK), -1);

	ck_assert_int_eq(moe_st_write("/nonexistent-dir/x.safetensors", &t, 1, NULL, 0), MOE_ERR_IO);
	ck_assert(strstr(moe_last_error(), "/nonexistent-dir/x.safetensors"));
	remove_dir();
}
END_TEST

START_TEST(test_write_replaces_atomically)
{
	make_dir();
	const char *path = in_dir("a.safetensors");
	put_file(path, "old contents", 12);
	uint8_t v[3] = { 1, 2, 3 };
	struct moe_st_tensor t = { "v", MOE_ST_U8, 1, { 3 }, v, 3 };
	ck_assert_int_eq(moe_st_write(path, &t, 1, NULL, 0), MOE_OK);
	struct moe_st_file f;
	ck_assert_int_eq(moe_st_read(path, &f), MOE_OK);
	ck_assert_uint_eq(f.ntensors, 1);
	ck_assert_uint_eq(((const uint8_t *)f.tensors[0].data)[2], 3);
	moe_st_free(&f);
	/* the temporary file was renamed, not left next to the result */
	DIR *d = opendir(dir);
	int entries = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		entries += de->d_name[0] != '.';
	closedir(d);
	ck_assert_int_eq(entries, 1);
	remove_dir();
}
END_TEST

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

START_TEST(test_mutated_files)
{
	make_dir();
	float a[6] = { 1, 2, 3, 4, 5, 6 };
	uint16_t b[3] = { 7, 8, 9 };
	int64_t c[2] = { 10, 11 };
	struct moe_st_tensor t[] = {
		{ "a", MOE_ST_F32, 2, { 2, 3 }, a, sizeof a },
		{ "b", MOE_ST_BF16, 1, { 3 }, b, sizeof b },
		{ "e", MOE_ST_U8, 1, { 0 }, NULL, 0 },
		{ "c", MOE_ST_I64, 1, { 2 }, c, sizeof c },
	};
	struct moe_st_meta m = { "k", "v" };
	const char *orig = in_dir("orig.safetensors"), *path = in_dir("mut.safetensors");
	ck_assert_int_eq(moe_st_write(orig, t, 4, &m, 1), MOE_OK);
	unsigned char good[1024], buf[1024];
	FILE *fp = fopen(orig, "rb");
	size_t size = fread(good, 1, sizeof good, fp);
	fclose(fp);

	int ok = 0, refused = 0;
	for (int it = 0; it < 3000; it++) {
		memcpy(buf, good, size);
		size_t n = size;
		int edits = 1 + (int)(rng() % 4);
		for (int e = 0; e < edits && n > 0; e++) {
			size_t pos = rng() % n;
			switch (rng() % 4) {
			case 0: buf[pos] = (unsigned char)rng(); break;           /* any byte */
			case 1: buf[pos] = (unsigned char)("0123456789,[]{}\" "[rng() % 17]); break;
			case 2: buf[pos] ^= (unsigned char)(1u << (rng() % 8)); break; /* one bit */
			default: n = pos; break;                                     /* truncate */
			}
		}
		put_file(path, buf, n);
		struct moe_st_file f;
		enum moe_status s = moe_st_read(path, &f);
		ck_assert_msg(s == MOE_OK || s == MOE_ERR_FORMAT, "iteration %d: status %d (%s)", it, s,
			      moe_last_error());
		if (s == MOE_OK) {
			ok++;
			/* touch every byte the reader handed out: ASan/valgrind flag any stray pointer */
			unsigned sum = 0;
			for (size_t i = 0; i < f.ntensors; i++) {
				const unsigned char *p = f.tensors[i].data;
				for (size_t j = 0; j < f.tensors[i].nbytes; j++)
					sum += p[j];
				ck_assert_uint_eq(f.tensors[i].nbytes % moe_st_dtype_size(f.tensors[i].dtype), 0);
			}
			for (size_t i = 0; i < f.nmeta; i++)
				sum += (unsigned)strlen(f.meta[i].key) + (unsigned)strlen(f.meta[i].value);
			ck_assert_uint_ne(sum, UINT_MAX);
		} else {
			refused++;
		}
		moe_st_free(&f);
	}
	/* both outcomes occur, so the loop exercises the reader's accept and refuse paths */
	ck_assert_int_gt(ok, 10);
	ck_assert_int_gt(refused, 1000);
	remove_dir();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("safetensors");
	TCase *tc = tcase_create("safetensors");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_dtype_names);
	tcase_add_test(tc, test_round_trip_every_dtype);
	tcase_add_test(tc, test_hand_written_file);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_write_arguments);
	tcase_add_test(tc, test_write_replaces_atomically);
	tcase_add_test(tc, test_mutated_files);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
