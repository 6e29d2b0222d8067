# The SDK for backend authors, installed by `cmake --install` (component "sdk"; a plain install
# includes it): the public headers, a pkg-config file (moebench.pc) and a CMake package
# (find_package(moebench) -> imported target moebench::headers). Plugins link no moebench library:
# the host exports nothing, so the headers' types, macros and static inline helpers are the SDK.
include(CMakePackageConfigHelpers)

# The plugin ABI version, read from the header that defines it so the two cannot disagree.
file(READ ${PROJECT_SOURCE_DIR}/include/moe/backend.h MOE_BACKEND_H)
string(REGEX MATCH "#define MOE_BACKEND_ABI_VERSION ([0-9]+)u" _ ${MOE_BACKEND_H})
set(MOE_ABI_VERSION ${CMAKE_MATCH_1})

set(MOE_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/cmake/moebench)
set(MOE_PKGCONFIG_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/pkgconfig)

add_library(moebench_headers INTERFACE)
set_target_properties(moebench_headers PROPERTIES EXPORT_NAME headers)
target_include_directories(moebench_headers INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(moebench_headers INTERFACE c_std_11)
add_library(moebench::headers ALIAS moebench_headers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/moe DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT sdk FILES_MATCHING PATTERN "*.h")
install(TARGETS moebench_headers EXPORT moebenchTargets COMPONENT sdk)
install(EXPORT moebenchTargets NAMESPACE moebench:: DESTINATION ${MOE_CMAKE_INSTALL_DIR} COMPONENT sdk)

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/moebenchConfig.cmake.in
  ${PROJECT_BINARY_DIR}/moebenchConfig.cmake INSTALL_DESTINATION ${MOE_CMAKE_INSTALL_DIR})
# 0.x: a minor version may change the ABI, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/moebenchConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/moebenchConfig.cmake ${PROJECT_BINARY_DIR}/moebenchConfigVersion.cmake
  DESTINATION ${MOE_CMAKE_INSTALL_DIR} COMPONENT sdk)

# The .pc file finds its prefix from its own location (${pcfiledir}), so an installed tree can be
# moved or installed with `cmake --install --prefix` to somewhere other than CMAKE_INSTALL_PREFIX.
file(RELATIVE_PATH MOE_PC_TO_PREFIX /p/${MOE_PKGCONFIG_INSTALL_DIR} /p)
string(REGEX REPLACE "/$" "" MOE_PC_TO_PREFIX "${MOE_PC_TO_PREFIX}")
if(IS_ABSOLUTE ${CMAKE_INSTALL_INCLUDEDIR})
  set(MOE_PC_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
else()
  set(MOE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/moebench.pc.in ${PROJECT_BINARY_DIR}/moebench.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/moebench.pc DESTINATION ${MOE_PKGCONFIG_INSTALL_DIR} COMPONENT sdk)
