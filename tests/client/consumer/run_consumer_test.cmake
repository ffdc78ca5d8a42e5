# cmake -DBUILD_DIR=... -DCONSUMER_DIR=... -DWORK_DIR=... -P this
# Installs the devmem_client component of BUILD_DIR into a temporary prefix,
# then configures, builds and runs the consumer project against it, once
# with find_package and once with pkg-config.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}")
  endif()
  message(STATUS "ok: ${ARGN}")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(flags "")
if(SANITIZE)
  set(flags "-fsanitize=${SANITIZE} -fno-omit-frame-pointer")
endif()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
    --component devmem_client)
foreach(f include/client/client.h include/client/rx_socket.h
          include/devmem/v1/devmem.pb.h)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
file(GLOB_RECURSE pc ${prefix}/*/devmem_client.pc)
if(NOT pc)
  message(FATAL_ERROR "devmem_client.pc not installed")
endif()

# 1. CMake package.
run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX}
    "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${flags}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)

# 2. pkg-config.
get_filename_component(pcdir ${pc} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pcdir})
run(pkg-config --cflags --libs devmem_client)
string(STRIP "${last_output}" pkgflags)
separate_arguments(pkgflags UNIX_COMMAND "${pkgflags}")
separate_arguments(sanflags UNIX_COMMAND "${flags}")
run(${CXX} ${sanflags} ${CONSUMER_DIR}/main.cc -o ${WORK_DIR}/consumer-pc
    ${pkgflags})
run(${WORK_DIR}/consumer-pc)
