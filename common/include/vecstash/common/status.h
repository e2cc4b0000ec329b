// Coded status and Result<T>, the error currency across vecstash module boundaries.
// Thread safety: immutable values; safe to copy between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace vecstash {

/// Error categories. The API layer maps each to one HTTP status (see docs/ARCHITECTURE.md).
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument,     ///< bad shape, kind, value (NaN), k, limit
  kFailedPrecondition,  ///< e.g. encoding with an untrained codec
  kNotFound,
  kAlreadyExists,
  kCorruption,          ///< a persisted blob is damaged or of an unknown version
  kUnavailable,         ///< a backend (GPU) is not present
  kResourceExhausted,   ///< out of memory, limits exceeded
  kInternal,
};

std::string_view status_code_name(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status failed_precondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status resource_exhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool is_ok() const noexcept { return code_ == StatusCode::kOk; }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  /// "InvalidArgument: message" (or "OK").
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// A value or an error Status (never an OK status).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                    // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {}             // NOLINT(implicit)

  bool is_ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return is_ok(); }
  const Status& status() const {
    static const Status kOkStatus;
    return is_ok() ? kOkStatus : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vecstash

/// Return early from the enclosing function when `expr` yields a non-OK Status.
#define VECSTASH_RETURN_IF_ERROR(expr)              \
  do {                                              \
    ::vecstash::Status vecstash_status_ = (expr);   \
    if (!vecstash_status_.is_ok()) return vecstash_status_; \
  } while (0)
