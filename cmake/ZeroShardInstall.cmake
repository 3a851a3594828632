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
install(PROGRAMS scripts/zs-mpirun DESTINATION ${CMAKE_INSTALL_BINDIR})
