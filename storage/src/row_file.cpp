#include "vecstash/storage/row_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <vector>

#include "vecstash/common/blob.h"

namespace vecstash::storage {

namespace {

Status io_error(int err, std::string_view what, const std::filesystem::path& path) {
  std::string msg = std::string(what) + " " + path.string() + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::resource_exhausted(std::move(msg));
  return Status::unavailable(std::move(msg));
}

std::vector<std::uint8_t> header_bytes(std::size_t record_size, std::string_view tag) {
  BlobWriter w("VSRF", RowFile::kFormatVersion);
  w.u32(static_cast<std::uint32_t>(record_size));
  w.bytes({reinterpret_cast<const std::uint8_t*>(tag.data()), tag.size()});
  std::vector<std::uint8_t> blob = w.finish();
  blob.resize(RowFile::kHeaderSize, 0);
  return blob;
}

Status write_all(int fd, const std::uint8_t* data, std::size_t n, off_t offset, const std::filesystem::path& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error(errno, "writing", path);
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += w;
  }
  return Status::ok();
}

Status read_all(int fd, std::uint8_t* data, std::size_t n, off_t offset, const std::filesystem::path& path) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, data, n, offset);
    if (r < 0) {
      if (errno == EINTR) continue;
      return io_error(errno, "reading", path);
    }
    if (r == 0) return Status::corruption("reading " + path.string() + ": records past the end of the file");
    data += r;
    n -= static_cast<std::size_t>(r);
    offset += r;
  }
  return Status::ok();
}

}  // namespace

RowFile::RowFile(std::filesystem::path path, int fd, std::size_t record_size)
    : path_(std::move(path)), fd_(fd), record_size_(record_size) {}

RowFile::~RowFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<RowFile>> RowFile::create(const std::filesystem::path& path, std::size_t record_size,
                                                 std::string_view tag) {
  if (record_size == 0 || record_size > (std::size_t{1} << 30) || tag.size() > kMaxTag) {
    return Status::invalid_argument("row file " + path.string() + ": bad record size or tag");
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error(errno, "creating", path);
  std::unique_ptr<RowFile> file(new RowFile(path, fd, record_size));
  const auto header = header_bytes(record_size, tag);
  VECSTASH_RETURN_IF_ERROR(write_all(fd, header.data(), header.size(), 0, path));
  VECSTASH_RETURN_IF_ERROR(file->sync());
  return file;
}

Result<std::unique_ptr<RowFile>> RowFile::open(const std::filesystem::path& path, std::size_t record_size,
                                               std::string_view tag) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("row file " + path.string() + " is missing");
    return io_error(errno, "opening", path);
  }
  std::unique_ptr<RowFile> file(new RowFile(path, fd, record_size));
  std::vector<std::uint8_t> header(kHeaderSize);
  const Status read = read_all(fd, header.data(), header.size(), 0, path);
  if (!read.is_ok()) {
    if (read.code() == StatusCode::kCorruption)
      return Status::corruption("row file " + path.string() + ": short header");
    return read;
  }
  if (header != header_bytes(record_size, tag)) {
    if (std::memcmp(header.data(), "VSRF", 4) != 0) {
      return Status::corruption("row file " + path.string() + ": damaged or not a row file");
    }
    return Status::corruption("row file " + path.string() + ": damaged, or holds other records than '" +
                              std::string(tag) + "' of " + std::to_string(record_size) + " bytes");
  }
  return file;
}

Status RowFile::write(std::size_t first_row, std::span<const std::uint8_t> bytes) {
  if (bytes.size() % record_size_ != 0) {
    return Status::internal("row file " + path_.string() + ": write of a partial record");
  }
  if (bytes.empty()) return Status::ok();
  const off_t offset = static_cast<off_t>(kHeaderSize + first_row * record_size_);
  return write_all(fd_, bytes.data(), bytes.size(), offset, path_);
}

Status RowFile::read(std::size_t first_row, std::span<std::uint8_t> out) const {
  if (out.empty()) return Status::ok();
  const off_t offset = static_cast<off_t>(kHeaderSize + first_row * record_size_);
  return read_all(fd_, out.data(), out.size(), offset, path_);
}

Status RowFile::read_rows(std::span<const std::size_t> rows, std::uint8_t* out) const {
  const std::size_t n = rows.size();
  if (n == 0) return Status::ok();
  // Read in row order, one call per run of neighbouring rows, then place each record.
  std::vector<std::uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  const bool sorted = std::is_sorted(rows.begin(), rows.end());
  if (!sorted)
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return rows[a] < rows[b]; });
  std::vector<std::uint8_t> run;
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && rows[order[j]] <= rows[order[j - 1]] + 1) ++j;
    const std::size_t first = rows[order[i]], last = rows[order[j - 1]];
    if (j - i == 1) {
      VECSTASH_RETURN_IF_ERROR(read(first, {out + std::size_t{order[i]} * record_size_, record_size_}));
    } else {
      run.resize((last - first + 1) * record_size_);
      VECSTASH_RETURN_IF_ERROR(read(first, run));
      for (std::size_t t = i; t < j; ++t) {
        std::memcpy(out + std::size_t{order[t]} * record_size_, run.data() + (rows[order[t]] - first) * record_size_,
                    record_size_);
      }
    }
    i = j;
  }
  return Status::ok();
}

Status RowFile::sync() {
  if (::fdatasync(fd_) != 0) return io_error(errno, "syncing", path_);
  return Status::ok();
}

Status RowFile::truncate(std::size_t rows) {
  if (::ftruncate(fd_, static_cast<off_t>(kHeaderSize + rows * record_size_)) != 0) {
    return io_error(errno, "truncating", path_);
  }
  return Status::ok();
}

void RowFile::drop_cache() const noexcept { (void)::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED); }

std::size_t RowFile::rows_on_disk() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || static_cast<std::size_t>(st.st_size) < kHeaderSize) return 0;
  return (static_cast<std::size_t>(st.st_size) - kHeaderSize) / record_size_;
}

Status sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error(errno, "opening directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return io_error(err, "syncing directory", dir);
  return Status::ok();
}

Status write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return io_error(errno, "creating", tmp);
  Status s = write_all(fd, bytes.data(), bytes.size(), 0, tmp);
  if (s.is_ok() && ::fdatasync(fd) != 0) s = io_error(errno, "syncing", tmp);
  ::close(fd);
  if (s.is_ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = io_error(errno, "renaming", tmp);
  if (!s.is_ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return sync_directory(path.parent_path());
}

Result<std::string> read_whole_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found(path.string() + " is missing");
    return io_error(errno, "opening", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error(err, "reading", path);
  }
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  const Status s = read_all(fd, reinterpret_cast<std::uint8_t*>(out.data()), out.size(), 0, path);
  ::close(fd);
  if (!s.is_ok()) return s;
  return out;
}

}  // namespace vecstash::storage
