# Options, warnings, sanitizers and the helper functions every folder uses.
# This is the one place where compile flags are decided.

option(DEVMEM_BUILD_TESTS "Build the tests" ON)
option(DEVMEM_BUILD_BENCH "Build the benchmarks" ON)
option(DEVMEM_CORE_ONLY
       "Build only base/, pool/ and providers/ (no gRPC): the TSan tree" OFF)
# Off for a user's build (a newer compiler's new warning must not break it);
# ./dev and CI turn it on.
option(DEVMEM_WERROR "Treat warnings in our own code as errors" OFF)
set(DEVMEM_SANITIZE "" CACHE STRING
    "Sanitizers: empty, 'address;undefined' or 'thread'")

if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  set(DEVMEM_CLANG ON)
endif()

# Our own code builds with these; generated code does not.
set(DEVMEM_WARNINGS -Wall -Wextra -Wno-unused-parameter
    -Wno-missing-field-initializers)
if(DEVMEM_WERROR)
  list(APPEND DEVMEM_WARNINGS -Werror)
endif()
if(DEVMEM_CLANG)
  list(APPEND DEVMEM_WARNINGS -Wthread-safety)
endif()

if(DEVMEM_SANITIZE)
  string(REPLACE ";" "," _san "${DEVMEM_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_san})
  if(_san MATCHES "thread")
    add_compile_definitions(DEVMEM_TSAN=1)
  endif()
endif()

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

# devmem_target_defaults(target): warnings and include root for our code.
function(devmem_target_defaults target)
  target_compile_options(${target} PRIVATE ${DEVMEM_WARNINGS})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>)
endfunction()

# devmem_add_test(NAME name SOURCES ... LIBS ... [LABELS ...])
# One executable per test file, registered with gtest_discover_tests.
function(devmem_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  devmem_target_defaults(${T_NAME})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock
                        GTest::gtest_main)
  set(_props TIMEOUT 300)
  if(T_LABELS)
    # gtest_discover_tests re-splits lists at every level, so several labels
    # become one comma-joined label ("pool,tsan"); `ctest -L tsan` matches it.
    string(REPLACE ";" "," _labels "${T_LABELS}")
    list(APPEND _props LABELS "${_labels}")
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES ${_props})
endfunction()
