#include "storage/record_scan.h"

#include <pthread.h>

#include <utility>

namespace tensorpager::storage {

BlockKeyView RecordScan::Batch::key(size_t i) const {
  const At& r = records_[i];
  const absl::string_view bytes(bytes_);
  return BlockKeyView(bytes.substr(r.offset, r.ns_size),
                      bytes.substr(r.offset + r.ns_size, r.id_size));
}

absl::string_view RecordScan::Batch::value(size_t i) const {
  const At& r = records_[i];
  return absl::string_view(bytes_).substr(r.offset + r.ns_size + r.id_size,
                                          r.value_size);
}

void RecordScan::Batch::Clear() {
  bytes_.clear();
  records_.clear();
}

void RecordScan::Batch::Add(BlockKeyView key, absl::string_view value) {
  records_.push_back(At{static_cast<uint32_t>(bytes_.size()),
                        static_cast<uint32_t>(key.ns.size()),
                        static_cast<uint32_t>(key.id.size()),
                        static_cast<uint32_t>(value.size())});
  bytes_.append(key.ns.data(), key.ns.size());
  bytes_.append(key.id.data(), key.id.size());
  bytes_.append(value.data(), value.size());
}

RecordScan::RecordScan(const MetadataStore& meta) {
  for (size_t i = 0; i < kBatches; ++i) {
    batches_.push_back(std::make_unique<Batch>());
  }
  {
    MutexLock lock(&mu_);
    for (const std::unique_ptr<Batch>& b : batches_) empty_.push_back(b.get());
  }
  thread_ = std::thread([this, &meta] { Run(meta); });
}

RecordScan::~RecordScan() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  changed_.SignalAll();
  thread_.join();
}

RecordScan::Batch* RecordScan::TakeEmpty() {
  MutexLock lock(&mu_);
  while (empty_.empty() && !stop_) changed_.Wait(&mu_);
  if (stop_) return nullptr;
  Batch* b = empty_.back();
  empty_.pop_back();
  b->Clear();
  return b;
}

void RecordScan::Publish(Batch* batch) {
  {
    MutexLock lock(&mu_);
    full_.push_back(batch);
  }
  changed_.SignalAll();
}

void RecordScan::Run(const MetadataStore& meta) {
  pthread_setname_np(pthread_self(), "tp-recovery");
  Batch* batch = TakeEmpty();
  absl::Status status;
  if (batch != nullptr) {
    status = meta.ForEachRaw([&](BlockKeyView key, absl::string_view value) {
      batch->Add(key, value);
      if (batch->size() < kBatchRecords) return absl::OkStatus();
      Publish(batch);
      batch = TakeEmpty();
      // Stopping: the caller no longer wants records.
      return batch == nullptr ? absl::CancelledError("recovery stopped")
                              : absl::OkStatus();
    });
  }
  if (batch != nullptr && batch->size() > 0) {
    Publish(batch);
  }
  {
    MutexLock lock(&mu_);
    status_ = std::move(status);
    done_ = true;
  }
  changed_.SignalAll();
}

RecordScan::Batch* RecordScan::Next() {
  MutexLock lock(&mu_);
  if (current_ != nullptr) {
    empty_.push_back(current_);
    current_ = nullptr;
    changed_.SignalAll();
  }
  while (full_.empty() && !done_) changed_.Wait(&mu_);
  if (full_.empty()) return nullptr;
  current_ = full_.front();
  full_.pop_front();
  return current_;
}

absl::Status RecordScan::status() const {
  MutexLock lock(&mu_);
  // Batches published before a failure are handed out first; the error
  // counts once the caller has them all.
  return full_.empty() ? status_ : absl::OkStatus();
}

}  // namespace tensorpager::storage
