# Dependencies, all from Debian packages, found through pkg-config. A missing one stops the
# configuration with the name of the package that provides it; scripts/install-deps installs all.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config' (or run scripts/install-deps)")
endif()

function(moe_require_pkg target module debian_package)
  pkg_check_modules(${target} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "Required dependency '${module}' not found by pkg-config: install the Debian package '${debian_package}' (or run scripts/install-deps)")
  endif()
  message(STATUS "Found ${module} ${${target}_VERSION}")
endfunction()

moe_require_pkg(MOE_OPENBLAS openblas libopenblas-dev)
moe_require_pkg(MOE_HWLOC hwloc libhwloc-dev)
moe_require_pkg(MOE_PAPI papi libpapi-dev)
moe_require_pkg(MOE_JANSSON jansson libjansson-dev)
if(MOE_BUILD_TESTS)
  moe_require_pkg(MOE_CHECK check check)
endif()

find_package(Threads REQUIRED)
find_library(MOE_LIBM m REQUIRED)
