# pgolf_layer(NAME [DEPS LAYER...] [EXCLUDE FILE...] [NO_PCH])
#
# The static library pgolf_NAME from src/NAME/*.cpp, linking pgolf::torch and
# the layers named in DEPS (each already defined, so only layers below it).
# Its headers are reachable as "NAME/x.h" only through an include root of its
# own, build/layers/NAME, which holds one link to src/NAME: a layer that does
# not name another cannot include its headers, so an #include that points up
# (or sideways to an undeclared layer) fails the build.
#
# A layer whose folder the checkout lacks is skipped, and so is such a DEPS
# entry: the code bundle (CMakeLists.txt) holds only the evaluator's layers.
function(pgolf_layer name)
  cmake_parse_arguments(L "NO_PCH" "" "DEPS;EXCLUDE" ${ARGN})
  if(NOT EXISTS ${CMAKE_SOURCE_DIR}/src/${name})
    return()
  endif()
  foreach(dep IN LISTS L_DEPS)
    if(NOT EXISTS ${CMAKE_SOURCE_DIR}/src/${dep})
      list(REMOVE_ITEM L_DEPS ${dep})
    endif()
  endforeach()
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  foreach(excluded IN LISTS L_EXCLUDE)
    list(REMOVE_ITEM sources ${CMAKE_SOURCE_DIR}/src/${name}/${excluded})
  endforeach()
  foreach(dep IN LISTS L_DEPS)
    if(NOT TARGET pgolf_${dep})
      message(FATAL_ERROR "layer ${name}: ${dep} is not a layer below it")
    endif()
  endforeach()
  set(root ${CMAKE_BINARY_DIR}/layers/${name})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${name} ${root}/${name} SYMBOLIC)
  add_library(pgolf_${name} STATIC ${sources})
  target_include_directories(pgolf_${name} PUBLIC ${root})
  list(TRANSFORM L_DEPS PREPEND pgolf_)
  target_link_libraries(pgolf_${name} PUBLIC pgolf::torch ${L_DEPS})
  # fmt: LibTorch ships its own fmt headers, which shadow Debian's on the
  # include path, so fmt is used header-only at LibTorch's version.
  target_compile_definitions(pgolf_${name} PUBLIC FMT_HEADER_ONLY=1)
  target_compile_options(pgolf_${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  if(PGOLF_WERROR)
    target_compile_options(pgolf_${name} PRIVATE -Werror)
  endif()
  # LibTorch's headers dominate compile time: precompiled once (common's),
  # reused by every layer built with the same flags.
  if(NOT L_NO_PCH)
    if(name STREQUAL "common")
      target_precompile_headers(pgolf_common PRIVATE ${CMAKE_SOURCE_DIR}/src/common/pch.h)
    else()
      target_precompile_headers(pgolf_${name} REUSE_FROM pgolf_common)
    endif()
  endif()
  set_property(GLOBAL APPEND PROPERTY PGOLF_LAYERS ${name})
endfunction()
