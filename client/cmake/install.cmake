# Installing the client: headers, libdevmem_client and the in-project
# libraries it needs (one export set), a CMake package
# (find_package(devmem_client) -> devmem::devmem_client) and a pkg-config
# file. Everything is in the "devmem_client" install component:
#   cmake --install <build> --prefix /usr/local --component devmem_client
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_devmem_client_libs devmem_client devmem_session devmem_proto
    devmem_dmabuf devmem_pool devmem_base)
install(TARGETS ${_devmem_client_libs}
  EXPORT devmem_clientTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devmem_client
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devmem_client
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# Public headers keep their in-tree paths ("client/client.h",
# "base/unique_fd.h", "devmem/v1/devmem.pb.h").
install(DIRECTORY ${PROJECT_SOURCE_DIR}/base ${PROJECT_SOURCE_DIR}/pool
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devmem_client
  FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/client
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devmem_client
  FILES_MATCHING PATTERN "*.h"
  PATTERN "internal" EXCLUDE PATTERN "demo" EXCLUDE PATTERN "cmake" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/session/fdsock_client.h
              ${PROJECT_SOURCE_DIR}/session/fdsock_codec.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/session
  COMPONENT devmem_client)
install(DIRECTORY ${PROJECT_BINARY_DIR}/proto/devmem
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT devmem_client
  FILES_MATCHING PATTERN "*.pb.h")

set(_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/devmem_client)
install(EXPORT devmem_clientTargets NAMESPACE devmem::
  DESTINATION ${_cmakedir} COMPONENT devmem_client)
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/devmem_clientConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/devmem_clientConfig.cmake
  INSTALL_DESTINATION ${_cmakedir})
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/devmem_clientConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/devmem_clientConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/devmem_clientConfigVersion.cmake
  DESTINATION ${_cmakedir} COMPONENT devmem_client)

# Relocatable: the prefix is found from the .pc file's own place.
file(RELATIVE_PATH DEVMEM_PC_REL "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${CMAKE_CURRENT_LIST_DIR}/devmem_client.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/devmem_client.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/devmem_client.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devmem_client)

install(TARGETS devmemctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT devmem_client)
