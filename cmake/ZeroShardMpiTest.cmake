# zs_add_mpi_test(NAME <name> TARGET <exe> [SOURCES s...] [RANKS 1 2 3 4] [TIMEOUT s] [LABELS l...]
#                 [SKIP_REGEX r] [ARGS a...])
# With SOURCES, first builds <exe> from them as a GoogleTest-under-MPI binary (linked with
# ZeroShard::zeroshard and zs_mpi_gtest_main).
# Registers <exe> once per world size as <name>.np<N> under scripts/zs-mpirun, with a timeout
# so that a hang fails fast instead of stalling CI. Output matching SKIP_REGEX marks the test
# skipped in CTest's summary (e.g. GPU tests on a machine without a GPU).
set(ZS_MPIRUN "${CMAKE_CURRENT_LIST_DIR}/../scripts/zs-mpirun" CACHE FILEPATH "mpirun wrapper used by tests")

function(zs_add_mpi_test)
  cmake_parse_arguments(ARG "" "NAME;TARGET;TIMEOUT;SKIP_REGEX" "SOURCES;RANKS;LABELS;ARGS" ${ARGN})
  if(ARG_SOURCES)
    add_executable(${ARG_TARGET} ${ARG_SOURCES})
    target_link_libraries(${ARG_TARGET} PRIVATE ZeroShard::zeroshard zs_mpi_gtest_main)
  endif()
  if(NOT ARG_RANKS)
    set(ARG_RANKS 1 2 3 4)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  foreach(np IN LISTS ARG_RANKS)
    add_test(NAME ${ARG_NAME}.np${np}
             COMMAND ${ZS_MPIRUN} -np ${np} $<TARGET_FILE:${ARG_TARGET}> ${ARG_ARGS})
    set_tests_properties(${ARG_NAME}.np${np} PROPERTIES
      TIMEOUT ${ARG_TIMEOUT}
      PROCESSORS ${np}
      LABELS "mpi;${ARG_LABELS}")
    if(ARG_SKIP_REGEX)
      set_tests_properties(${ARG_NAME}.np${np} PROPERTIES SKIP_REGULAR_EXPRESSION "${ARG_SKIP_REGEX}")
    endif()
  endforeach()
endfunction()
