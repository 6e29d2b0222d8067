/* libFuzzer target for the safetensors reader: each input is a whole file, handed to moe_st_read
 * through an in-memory file (memfd), which must either read it or refuse it with MOE_ERR_FORMAT;
 * on success every byte of every tensor and metadata string is touched so that the sanitizers see
 * any pointer outside the file. Built only with clang (tests/CMakeLists.txt):
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang && cmake --build build-fuzz --target fuzz_safetensors
 *   build-fuzz/tests/fuzz_safetensors -max_total_time=60 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("moe_fuzz_st", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	struct moe_st_file f;
	enum moe_status s = moe_st_read(path, &f);
	if (s != MOE_OK && s != MOE_ERR_FORMAT)
		abort();
	unsigned sum = 0;
	for (size_t i = 0; i < f.ntensors; i++)
		for (size_t j = 0; j < f.tensors[i].nbytes; j++)
			sum += ((const unsigned char *)f.tensors[i].data)[j];
	for (size_t i = 0; i < f.nmeta; i++)
		sum += (unsigned)strlen(f.meta[i].key) + (unsigned)strlen(f.meta[i].value);
	__asm__ volatile("" : : "r"(sum)); /* keep the reads */
	moe_st_free(&f);
	close(fd);
	return 0;
}
