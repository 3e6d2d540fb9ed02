# Installs trit into WORK_DIR/prefix, then builds and runs tests/install_package/consumer
# against it with find_package(trit CONFIG REQUIRED). Run by CTest as `install_package`.
file(REMOVE_RECURSE ${WORK_DIR})
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()
run_step(${CMAKE_COMMAND} -S ${TRIT_SOURCE_DIR} -B ${WORK_DIR}/trit-build
         -DTRIT_BUILD_TESTS=OFF -DTRIT_BUILD_EXAMPLES=OFF -DTRIT_BUILD_BENCH=OFF
         -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
run_step(${CMAKE_COMMAND} --install ${WORK_DIR}/trit-build)
run_step(${CMAKE_COMMAND} -S ${TRIT_SOURCE_DIR}/tests/install_package/consumer
         -B ${WORK_DIR}/consumer-build -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run_step(${WORK_DIR}/consumer-build/consumer)
message(STATUS "consumer built against the installed trit and ran")
