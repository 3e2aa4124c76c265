// How the process's host memory allocator treats freed blocks. Why: glibc's
// malloc gives large freed blocks back to the kernel (blocks above its mmap
// threshold, and a heap top above its trim threshold), so each training step
// faults its activations and gradients back in, page by page, each page
// zeroed by the kernel: ~31,000 page faults a step for the `cpu` preset at 1
// thread and ~41,000 at 2 (~46,000 for `pr1406-cpu`), at ~2.5 us a page on
// this VM (133 MB: 80 ms to fault in, 7 ms to rewrite once mapped). With the
// blocks kept, a step reuses memory that is already mapped (~2,500-3,000
// faults a step). LibTorch's CPU allocator has no cache of its own.
#pragma once

#include <string>

namespace pgolf {

// Blocks up to 32 MB (glibc's largest mmap threshold) come from the heap and
// the heap is not trimmed below 1 GB of free top, so the process keeps its
// peak footprint. Returns false where the C library has no such settings.
bool retain_freed_host_memory();

// What retain_freed_host_memory() set, for `pgolf doctor`.
std::string host_memory_policy();

}  // namespace pgolf
