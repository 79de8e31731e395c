// Shared pieces of the hand-written C++ library of snn-backend-fused: the buffer pool
// (pool.cpp) is all it holds now.
//
// Plain C++17 with no PyTorch headers: the library compiles in seconds (a translation unit that
// includes ATen takes over 20 s on a 2-core machine) and is called through ctypes.  The kernels
// are not here: on the CPU they are generated from the models' steps (snn_backend_fused/
// compiler/) and built separately; on CUDA they are Triton kernels (snn_backend_fused/triton/).

#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#define SNNF_EXPORT extern "C" __attribute__((visibility("default")))
