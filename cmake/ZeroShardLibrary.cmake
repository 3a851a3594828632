# zs_add_library(<folder-name> SOURCES ... DEPENDS ...)
# One library per top-level folder: target zs_<name>, alias ZeroShard::<name>, public headers
# in <folder>/include, installed and exported.
function(zs_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS" ${ARGN})
  add_library(zs_${name} ${ARG_SOURCES})
  add_library(ZeroShard::${name} ALIAS zs_${name})
  set_target_properties(zs_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME zeroshard_${name})
  target_include_directories(zs_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(zs_${name} PUBLIC ${ARG_DEPENDS})
  target_compile_options(zs_${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>)
  install(TARGETS zs_${name} EXPORT ZeroShardTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  if(ZS_CUDA)
    install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  else()  # device/ headers include CUDA's: not installed in a build without it
    install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
            PATTERN device EXCLUDE)
  endif()
endfunction()
