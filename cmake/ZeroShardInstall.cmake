include(CMakePackageConfigHelpers)
set(ZS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ZeroShard)
install(EXPORT ZeroShardTargets NAMESPACE ZeroShard:: DESTINATION ${ZS_CMAKE_DIR})
configure_package_config_file(cmake/ZeroShardConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ZeroShardConfig.cmake INSTALL_DESTINATION ${ZS_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ZeroShardConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ZeroShardConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ZeroShardConfigVersion.cmake
        DESTINATION ${ZS_CMAKE_DIR})
# zs-cluster calls zs-mpirun from its own directory: installed side by side.
install(PROGRAMS scripts/zs-mpirun scripts/zs-cluster DESTINATION ${CMAKE_INSTALL_BINDIR})
