#!/bin/sh
# Installs the moebench SDK into a scratch prefix, builds examples/backend-example out of tree
# against it three ways (CMake package, pkg-config through CMake, pkg-config with the compiler
# alone), loads each result with the plugin loader, and verifies the CMake-built one: exit 0 with
# routing and expert groups that ran and passed, and its layer on explicit cases.
# usage: run-sdk-example.sh CMAKE BUILD_DIR SOURCE_DIR SCRATCH CC PROBE MOEBENCH
set -eu
cmake=$1 build=$2 src=$3 scratch=$4 cc=$5 probe=$6 moebench=$7
prefix=$scratch/prefix
rm -rf "$scratch"
mkdir -p "$scratch"

"$cmake" --install "$build" --component sdk --prefix "$prefix"
test -f "$prefix/include/moe/backend.h"
test -f "$prefix/share/pkgconfig/moebench.pc"
test -f "$prefix/share/cmake/moebench/moebenchConfig.cmake"

echo "== CMake package"
"$cmake" -S "$src/examples/backend-example" -B "$scratch/cmake-build" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo
"$cmake" --build "$scratch/cmake-build"
"$probe" "$scratch/cmake-build/example_backend.so"

echo "== pkg-config through CMake"
PKG_CONFIG_PATH=$prefix/share/pkgconfig
export PKG_CONFIG_PATH
"$cmake" -S "$src/examples/backend-example" -B "$scratch/pc-build" -DCMAKE_C_COMPILER="$cc" \
	-DEXAMPLE_USE_PKGCONFIG=ON
"$cmake" --build "$scratch/pc-build"
"$probe" "$scratch/pc-build/example_backend.so"

echo "== pkg-config and the compiler alone"
test "$(pkg-config --variable=abi_version moebench)" = 2
test "$(pkg-config --variable=entry_symbol moebench)" = moe_backend_entry_v2
# shellcheck disable=SC2046 # the flags are meant to split
"$cc" -std=c11 -O2 -Wall -Werror -fPIC -shared -ffp-contract=off $(pkg-config --cflags moebench) \
	"$src/examples/backend-example/example_backend.c" -o "$scratch/by-hand.so" -lm
"$probe" "$scratch/by-hand.so"

echo "== moebench verify --quick"
# exit 0 and at least one routing group actually run and passed (not everything skipped)
"$moebench" verify --backend "$scratch/cmake-build/example_backend.so" --quick >"$scratch/verify.txt" 2>&1 ||
	{ cat "$scratch/verify.txt"; exit 1; }
cat "$scratch/verify.txt"
grep -Eq '^PASS +route +example ' "$scratch/verify.txt"
# the expert ran through the packed path too (pack, expert_mt at 1, 2 and 3 threads) and passed
grep -Eq '^PASS +expert +example +w=f32 none act=none ' "$scratch/verify.txt"

echo "== moebench verify: the example's layer (plain, then packed layer_mt at 1, 2 and 3 threads)"
# no catalogue layer shape is one the example supports (fp32 weights, a Sigmoid router): explicit cases
for T in 1 16 300; do
	for m in Sigmoid SigmoidRenorm; do
		echo "layer method=$m profile=vllm E=8 K=3 renorm=1 T=$T H=64 I=48 wdtype=f32 act=none seed=$T"
	done
done >"$scratch/layer-cases.txt"
"$moebench" verify --backend "$scratch/cmake-build/example_backend.so" --cases "$scratch/layer-cases.txt" \
	>"$scratch/verify-layer.txt" 2>&1 || { cat "$scratch/verify-layer.txt"; exit 1; }
cat "$scratch/verify-layer.txt"
grep -Eq '^PASS +layer +example ' "$scratch/verify-layer.txt"
