# Locates LibTorch from the PyTorch pip wheel (or any importable torch >= 2.4)
# and exposes it as the imported target pgolf::torch.
#
# The pip wheel is CUDA-enabled. Two details make it link on a machine without a
# GPU: TORCH_CUDA_ARCH_LIST skips GPU detection at configure time, and
# -rpath-link points the linker at the wheel's own CUDA/NCCL libraries
# (site-packages/nvidia/*/lib) instead of an older system copy.
if(NOT Torch_DIR AND NOT DEFINED ENV{Torch_DIR})
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} -c "import torch, os; print(torch.utils.cmake_prefix_path); print(torch.__version__); print(os.path.dirname(os.path.dirname(torch.__file__)))"
    OUTPUT_VARIABLE _pgolf_torch_info OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "pgolf needs LibTorch: no importable torch found (run scripts/setup.sh)")
  endif()
  string(REPLACE "\n" ";" _pgolf_torch_info "${_pgolf_torch_info}")
  list(GET _pgolf_torch_info 0 _torch_prefix)
  list(GET _pgolf_torch_info 1 PGOLF_TORCH_VERSION)
  list(GET _pgolf_torch_info 2 _site_packages)
  # Cached: later configures skip this block once Torch_DIR is known.
  set(PGOLF_TORCH_SITE_PACKAGES ${_site_packages} CACHE PATH "site-packages holding torch")
  list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
  message(STATUS "pgolf: torch ${PGOLF_TORCH_VERSION} from ${_torch_prefix}")
endif()
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()
find_package(Torch REQUIRED)

add_library(pgolf::torch INTERFACE IMPORTED)
target_link_libraries(pgolf::torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(pgolf::torch INTERFACE ${TORCH_INCLUDE_DIRS})
# LibTorch's compile flags (e.g. -D_GLIBCXX_USE_CXX11_ABI) must match.
separate_arguments(_torch_cxx_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(pgolf::torch INTERFACE ${_torch_cxx_flags})
if(PGOLF_TORCH_SITE_PACKAGES)
  file(GLOB _nvidia_lib_dirs LIST_DIRECTORIES true ${PGOLF_TORCH_SITE_PACKAGES}/nvidia/*/lib)
  if(_nvidia_lib_dirs)
    list(JOIN _nvidia_lib_dirs ":" _rpath_link)
    target_link_options(pgolf::torch INTERFACE "LINKER:-rpath-link,${_rpath_link}")
  endif()
endif()
# libstdc++ before LibTorch in the load order: torch 2.11's libtorch.so exports
# a broken copy of part of std::filesystem (pytorch/pytorch#133437), and a
# binary that binds std::filesystem::remove_all to it jumps to address 0.
target_link_options(pgolf::torch INTERFACE
                    "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
