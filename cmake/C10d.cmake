# c10d, torch.distributed's C++ core, for src/dist/process_group.cpp (the only
# file that includes its headers, so only it gets these flags).
#
# The c10d symbols are in libtorch_cpu (TCPStore, Gloo) and libtorch_cuda
# (NCCL), and LibTorch's targets already define USE_C10D_GLOO / USE_C10D_NCCL,
# which gate each backend's header. What the pip wheel lacks:
# - Gloo's own headers, which ProcessGroupGloo.hpp includes: Debian's
#   libgloo-dev (scripts/setup.sh installs it). pgolf hands Gloo objects to
#   LibTorch only as opaque pointers, so the headers need not match the Gloo
#   built into the wheel exactly (checked: torch 2.15's ProcessGroupGloo.hpp
#   compiles against Debian's 2022 snapshot);
# - nccl.h of the NCCL it runs with: the wheel's nvidia-nccl package (a CUDA
#   toolkit may hold an older one). Found, with a CUDA LibTorch built with
#   NCCL, PGOLF_HAVE_NCCL=1.
set(_pgolf_dist_source ${CMAKE_SOURCE_DIR}/src/dist/process_group.cpp)
get_target_property(_pgolf_cpu_defs torch_cpu INTERFACE_COMPILE_DEFINITIONS)
if(NOT "USE_C10D_GLOO" IN_LIST _pgolf_cpu_defs)
  message(FATAL_ERROR "pgolf needs a LibTorch built with torch.distributed and Gloo "
                      "(torch_cpu does not define USE_C10D_GLOO)")
endif()
find_path(PGOLF_GLOO_INCLUDE_DIR gloo/algorithm.h)
if(NOT PGOLF_GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "Gloo headers not found: install Debian's libgloo-dev "
                      "(scripts/setup.sh does)")
endif()
# Debian's headers are in /usr/include, already searched (adding it as
# -isystem would break libstdc++'s #include_next).
if(NOT PGOLF_GLOO_INCLUDE_DIR STREQUAL "/usr/include")
  set_property(SOURCE ${_pgolf_dist_source} APPEND PROPERTY COMPILE_OPTIONS
               "-isystem${PGOLF_GLOO_INCLUDE_DIR}")
endif()

set(_pgolf_backends gloo)
if(TARGET torch_cuda)
  get_target_property(_pgolf_cuda_defs torch_cuda INTERFACE_COMPILE_DEFINITIONS)
  if("USE_C10D_NCCL" IN_LIST _pgolf_cuda_defs)
    set(_nccl_hints ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS})
    if(PGOLF_TORCH_SITE_PACKAGES)
      list(PREPEND _nccl_hints ${PGOLF_TORCH_SITE_PACKAGES}/nvidia/nccl/include)
    endif()
    find_path(PGOLF_NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_hints})
    if(PGOLF_NCCL_INCLUDE_DIR)
      set_property(SOURCE ${_pgolf_dist_source} APPEND PROPERTY COMPILE_DEFINITIONS
                   PGOLF_HAVE_NCCL=1)
      # -I, not -isystem: searched before every -isystem directory, so this
      # nccl.h wins over an older one in the CUDA toolkit's include folder.
      set_property(SOURCE ${_pgolf_dist_source} APPEND PROPERTY COMPILE_OPTIONS
                   "-I${PGOLF_NCCL_INCLUDE_DIR}")
      list(APPEND _pgolf_backends nccl)
    else()
      message(STATUS "pgolf: nccl.h not found, so no NCCL for multi-process CUDA runs")
    endif()
  endif()
endif()
list(JOIN _pgolf_backends ", " _pgolf_backends)
message(STATUS "pgolf: distributed backends: ${_pgolf_backends}")
