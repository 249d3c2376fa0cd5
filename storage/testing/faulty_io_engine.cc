#include "storage/testing/faulty_io_engine.h"

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/base/aligned_buffer.h"
#include "storage/io_error.h"

namespace tensorpager::storage::testing {
namespace {

std::string Describe(const IoRequest& r) {
  return absl::StrCat(r.op == IoOp::kRead ? "reading " : "writing ",
                      r.data.size(), " bytes at offset ", r.offset,
                      " of the faulty data file");
}

}  // namespace

void FaultyIoEngine::FailNext(IoOp op, Fault fault, int count) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < count; ++i) plan_.push_back({op, fault});
}

int FaultyIoEngine::injected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return injected_;
}

bool FaultyIoEngine::Take(IoOp op, Fault* fault) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = plan_.begin(); it != plan_.end(); ++it) {
    if (it->op != op) continue;
    *fault = it->fault;
    plan_.erase(it);
    ++injected_;
    return true;
  }
  return false;
}

void FaultyIoEngine::Inject(IoRequest& r, Fault fault) {
  // Half the request, in whole I/O units, is what a partial transfer moves.
  const uint64_t half =
      r.data.size() / 2 / base::kIoAlignment * base::kIoAlignment;
  auto move_prefix = [&] {
    if (half == 0) return absl::OkStatus();
    IoRequest prefix = r;
    prefix.data = r.data.subspan(0, half);
    inner_->TransferBatch({&prefix, 1});
    return prefix.status;
  };
  switch (fault) {
    case Fault::kEio:
      r.status = IoErrorStatus(EIO, r.op, Describe(r));
      return;
    case Fault::kNoSpace:
      r.status = IoErrorStatus(ENOSPC, r.op, Describe(r));
      return;
    case Fault::kShortTransfer:
      if (absl::Status s = move_prefix(); !s.ok()) {
        r.status = s;
        return;
      }
      r.status =
          ShortTransferStatus(r.op, Describe(r), half, inner_->file_size());
      return;
    case Fault::kTornWrite:
      if (r.op != IoOp::kWrite) {
        inner_->TransferBatch({&r, 1});
        return;
      }
      r.status = move_prefix();
      return;
  }
}

void FaultyIoEngine::TransferBatch(absl::Span<IoRequest> requests) {
  std::vector<IoRequest*> healthy;
  std::vector<IoRequest> pass;
  for (IoRequest& r : requests) {
    Fault fault;
    if (Take(r.op, &fault)) {
      Inject(r, fault);
    } else {
      healthy.push_back(&r);
      pass.push_back(r);
    }
  }
  inner_->TransferBatch(absl::MakeSpan(pass));
  for (size_t i = 0; i < pass.size(); ++i) *healthy[i] = pass[i];
}

absl::Status FaultyIoEngine::Sync() {
  Fault fault;
  if (Take(IoOp::kSync, &fault)) {
    return IoErrorStatus(fault == Fault::kNoSpace ? ENOSPC : EIO, IoOp::kSync,
                         "syncing the faulty data file");
  }
  return inner_->Sync();
}

absl::Status FaultyIoEngine::Reserve(uint64_t bytes) {
  Fault fault;
  if (Take(IoOp::kReserve, &fault)) {
    return IoErrorStatus(
        fault == Fault::kEio ? EIO : ENOSPC, IoOp::kReserve,
        absl::StrCat("growing the faulty data file to ", bytes, " bytes"));
  }
  return inner_->Reserve(bytes);
}

}  // namespace tensorpager::storage::testing
