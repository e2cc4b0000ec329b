#include "cpu/cpu_features.h"

#include <cpuid.h>

#include <cstdlib>
#include <string>

#include "vecstash/common/log.h"

namespace vecstash::kernels::cpu {

namespace {
CpuFeatures detect() noexcept {
  CpuFeatures f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  f.fma = (c >> 12) & 1;
  f.popcnt = (c >> 23) & 1;
  f.f16c = (c >> 29) & 1;
  std::uint64_t xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<std::uint64_t>(hi) << 32) | lo;
  }
  const bool ymm_os = (xcr0 & 0x6) == 0x6;
  const bool zmm_os = (xcr0 & 0xE6) == 0xE6;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = ymm_os && ((b >> 5) & 1);
    f.avx512f = zmm_os && ((b >> 16) & 1);
    f.avx512bw = zmm_os && ((b >> 30) & 1);
    f.avx512vl = zmm_os && ((b >> 31) & 1);
    f.avx512vnni = zmm_os && ((c >> 11) & 1);
    f.avx512vpopcntdq = zmm_os && ((c >> 14) & 1);
    f.avx512fp16 = zmm_os && ((d >> 23) & 1);
  }
  if (!ymm_os) f.fma = f.f16c = false;
  return f;
}

bool has_avx2(const CpuFeatures& f) noexcept { return f.avx2 && f.fma && f.f16c && f.popcnt; }
bool has_avx512(const CpuFeatures& f) noexcept {
  return has_avx2(f) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vpopcntdq;
}

const KernelTable& resolve() noexcept {
  const std::string forced = std::getenv("VECSTASH_ISA") ? std::getenv("VECSTASH_ISA") : "";
  const KernelTable* chosen = kernels_for("generic");
  if (forced != "generic" && kernels_for("avx2")) chosen = kernels_for("avx2");
  if (forced == "avx512") {
    if (const KernelTable* t = kernels_for("avx512")) {
      chosen = t;
    } else {
      log(LogLevel::kWarn, "VECSTASH_ISA=avx512: this processor lacks AVX-512 F/BW/VL/VPOPCNTDQ; using " +
                               std::string(chosen->isa));
    }
  }
  log(LogLevel::kDebug, std::string("cpu kernels: ") + chosen->isa);
  return *chosen;
}
}  // namespace

const CpuFeatures& cpu_features() noexcept {
  static const CpuFeatures f = detect();
  return f;
}

const KernelTable& kernels() noexcept {
  static const KernelTable& t = resolve();
  return t;
}

const KernelTable* kernels_for(const std::string& isa) noexcept {
  // Tables are built only when the processor can run them (their factories may use the ISA).
  const auto& f = cpu_features();
  if (isa == "generic") {
    static const KernelTable generic = make_generic_table();
    return &generic;
  }
  if (isa == "avx2" && has_avx2(f)) {
    static const KernelTable avx2 = make_avx2_table();
    return &avx2;
  }
  if (isa == "avx512" && has_avx512(f)) {
    static const KernelTable avx512 = make_avx512_table();
    return &avx512;
  }
  return nullptr;
}

}  // namespace vecstash::kernels::cpu
