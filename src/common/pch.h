// Precompiled header: the LibTorch and standard headers nearly every file uses.
// Keeping them here makes a clean build minutes shorter; it is not a licence to
// skip includes in the files themselves.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
