# The instruction set ZeroShard's own code is compiled for, chosen at configure time as GROMACS
# (GMX_SIMD) and LAMMPS do it. The math (Eigen's GEMMs, the optimizer loops, elementwise layers)
# is vectorised by the compiler, so the level decides CPU speed more than anything else
# (../docs/performance.md: 5-7x on the GEMMs between the x86-64 baseline and -march=native).
#
#   -DZS_SIMD=AUTO      (default) NATIVE: the host's own ISA; for source builds on the machine
#                       that runs them, as most HPC codes build
#   -DZS_SIMD=NATIVE    -march=native
#   -DZS_SIMD=AVX512    x86-64-v4 (AVX-512 F/BW/CD/DQ/VL)
#   -DZS_SIMD=AVX2      x86-64-v3 (AVX2, FMA, BMI2): what most x86 clusters since 2015 run
#   -DZS_SIMD=SSE4      x86-64-v2
#   -DZS_SIMD=BASELINE  the compiler's default target (x86-64: SSE2): portable, for packagers
#
# The flags are directory-level compile options of this project only: they are NOT usage
# requirements of the exported targets, so a project that links the installed package is never
# compiled with the host's flags. -fno-math-errno is always on: no ZeroShard code reads errno
# after a math call, and without it GCC must keep every std::sqrt scalar to set errno.
set(ZS_SIMD "AUTO" CACHE STRING "SIMD level of ZeroShard's code: AUTO, NATIVE, AVX512, AVX2, SSE4, BASELINE")
set_property(CACHE ZS_SIMD PROPERTY STRINGS AUTO NATIVE AVX512 AVX2 SSE4 BASELINE)
string(TOUPPER "${ZS_SIMD}" _zs_simd)
if(_zs_simd STREQUAL "AUTO")
  set(_zs_simd NATIVE)
endif()

set(_zs_x86 FALSE)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(_zs_x86 TRUE)
endif()
if(_zs_simd STREQUAL "NATIVE")
  set(ZS_SIMD_FLAGS -march=native)
elseif(_zs_simd STREQUAL "BASELINE")
  set(ZS_SIMD_FLAGS "")
elseif(_zs_simd MATCHES "^(AVX512|AVX2|SSE4)$")
  if(NOT _zs_x86)
    message(FATAL_ERROR "ZS_SIMD=${ZS_SIMD} is an x86-64 level; this is ${CMAKE_SYSTEM_PROCESSOR}: "
                        "use NATIVE or BASELINE")
  endif()
  set(_zs_levels_AVX512 x86-64-v4)
  set(_zs_levels_AVX2 x86-64-v3)
  set(_zs_levels_SSE4 x86-64-v2)
  set(ZS_SIMD_FLAGS -march=${_zs_levels_${_zs_simd}})
else()
  message(FATAL_ERROR "ZS_SIMD=${ZS_SIMD} is not a SIMD level: use AUTO, NATIVE, AVX512, AVX2, SSE4 or BASELINE")
endif()
set(ZS_SIMD_LEVEL ${_zs_simd})

include(CheckCXXCompilerFlag)
if(ZS_SIMD_FLAGS)
  check_cxx_compiler_flag("${ZS_SIMD_FLAGS}" _zs_simd_flags_work)
  if(NOT _zs_simd_flags_work)
    message(FATAL_ERROR "ZS_SIMD=${ZS_SIMD}: the compiler refuses ${ZS_SIMD_FLAGS}; use BASELINE")
  endif()
endif()
add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${ZS_SIMD_FLAGS};-fno-math-errno>")

# What the build is, for zs::build_info() (benchmarks print it in every table).
list(JOIN ZS_SIMD_FLAGS " " _zs_simd_flags_text)
set(ZS_SIMD_FLAGS_TEXT "${_zs_simd_flags_text}")
if(ZS_SIMD_FLAGS_TEXT)
  set(ZS_SIMD_SUMMARY "${ZS_SIMD_FLAGS_TEXT}")
else()
  set(ZS_SIMD_SUMMARY "the compiler's default target")
endif()
