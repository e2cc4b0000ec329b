// The int8 candidate scan with an explicit kernel table (tests compare ISAs through it).
// Internal to kernels/cpu; the public entry is search_i8_candidates_cpu (search.h).
#pragma once

#include "cpu/cpu_features.h"
#include "vecstash/kernels/search.h"

namespace vecstash::kernels::cpu {

/// search_i8_candidates_cpu with the scoring kernel of `table` (validated like the public entry).
Status search_i8_candidates_with(const KernelTable& table, const Codec& codec, MatrixView<const float> queries,
                                 const CodeView& codes, const SearchParams& params, TopK* out);

}  // namespace vecstash::kernels::cpu
