// One of the soak's concurrent clients (see soak.cc). It owns a fixed set
// of block ids that no other client touches, keeps the bytes each of them
// must hold, and loops over a weighted mix of operations through its own
// gRPC channel and a C++ SDK client it shares with a few others: every
// answer is checked (bytes, sizes, listings) and classified by SoakStats.
#ifndef TENSORPAGER_TESTS_BENCH_SOAK_CLIENT_H_
#define TENSORPAGER_TESTS_BENCH_SOAK_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage/shared_memory/ring_layout.h"
#include "tensorpager/client.h"
#include "tensorpager/v1/tensorpager.grpc.pb.h"
#include "tests/bench/soak_stats.h"

namespace tensorpager::soak {

struct SoakShared {
  std::string target;
  int ids_per_client = 32;
  uint64_t min_block_bytes = 4096;
  uint64_t max_block_bytes = 1 << 20;
  std::chrono::seconds deadline{120};
  SoakStats stats;
  ServerLife life;
  // The server maps this process's memfds (else no raw segment calls).
  std::atomic<bool> shared_memory{true};
  std::atomic<bool> stop{false};
};

class SoakClient {
 public:
  // `sdk` is shared with other clients and must outlive this one.
  SoakClient(int index, SoakShared* shared, Client* sdk);
  ~SoakClient();
  SoakClient(const SoakClient&) = delete;
  SoakClient& operator=(const SoakClient&) = delete;

  // Loops until shared->stop, then unregisters nothing (the server's state
  // stays for the final checks) and detaches its segment.
  void Run();
  // When the last call ended (for hang detection), and what runs now.
  Clock::time_point last_progress() const {
    return Clock::time_point(Clock::duration(progress_.load()));
  }
  Rpc current() const { return static_cast<Rpc>(current_.load()); }
  const std::string& name() const { return prefix_; }

 private:
  enum class State { kAbsent, kEmpty, kWritten, kUncertain };
  struct Slot {
    std::string id;
    State state = State::kAbsent;
    uint64_t size = 0;
    std::string data;  // what the server must hold (kWritten)
    // The server lifetime in which the block is known to hold `data` (or
    // be empty); 0: check it (after a restart it may be lost).
    uint64_t checked_life = 0;
    bool pinned = false;
  };
  // A sealed memfd this client attaches and detaches: the token, a request
  // ring (idle: Attach may start its server threads), then block bytes.
  struct Segment {
    int fd = -1;
    char* base = nullptr;
    uint64_t size = 0;
    std::string token;
    bool attached = false;
    uint64_t id = 0;
    std::string capability;
    uint64_t life = 0;  // the server lifetime that attached it
  };
  static constexpr uint64_t kSegmentHeader = shared_memory::kDataOffset;

  // ---- soak_client.cc and soak_client_slots.cc: slots, their data ----
  void Iteration();
  // Brings the slot to a known state (uncertain: unregistered; restarted:
  // checked with GetBlock). False when the slot is not usable yet.
  bool Settle(Slot& s);
  void Create(Slot& s);
  void SlotOp(Slot& s);
  void WriteSlot(Slot& s, bool whole);
  void ReadSlot(Slot& s);
  void SwapSlots(Slot& s, bool out);
  void PinToggle(Slot& s);
  void UnregisterSlot(Slot& s);
  void GetSlot(Slot& s);
  // Writes `bytes` at `offset` by one of the three paths; OK or the error.
  grpc::Status WriteStream(const Slot& s, uint64_t offset,
                           const std::string& bytes,
                           std::optional<bool> durable);
  grpc::Status WriteShared(const Slot& s, uint64_t offset,
                           const std::string& bytes,
                           std::optional<bool> durable);
  // After a mutating call failed (not refused): the slot's state is
  // unknown.
  void MarkUncertain(Slot& s);
  // Compares bytes the server sent with what the slot must hold.
  void Verify(CallRecorder& call, const Slot& s, uint64_t offset,
              const char* data, uint64_t length);
  bool Usable(const Slot& s) const;
  static Slot FreshSlot(const std::string& id);

  // ---- soak_client_ops.cc: everything else ----
  void ListOp();
  void StatusOp();
  void ReportAccessesOp();
  void WatchPressureOp();
  void SegmentOp();
  void BadInput();
  void BadWrite(Slot& s);
  void BadRead(Slot& s);
  void BadShared(Slot* s);
  void BadAttach();
  void BadUnknown();
  bool CreateSegment();
  void DetachSegment();

  // Helpers.
  std::unique_ptr<grpc::ClientContext> Context() const;
  CallRecorder Begin(Rpc rpc);
  void Progress();
  std::string NewBytes(uint64_t size);
  uint64_t Random(uint64_t n) { return rng_() % n; }
  bool Chance(int percent) {
    return Random(100) < static_cast<uint64_t>(percent);
  }
  Slot* PickUsable(bool written_only, bool unpinned_only);
  static grpc::Status FromAbsl(const absl::Status& s);

  SoakShared* const shared_;
  Client* const sdk_;
  const std::string prefix_;  // "c007-": every id of this client
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TensorPager::Stub> stub_;
  std::mt19937_64 rng_;
  std::vector<Slot> slots_;
  Segment segment_;
  int unsealed_fd_ = -1;  // a memfd without seals, for bad attaches
  uint64_t seed_ = 0;
  std::atomic<int64_t> progress_{0};
  std::atomic<int> current_{0};
};

}  // namespace tensorpager::soak

#endif  // TENSORPAGER_TESTS_BENCH_SOAK_CLIENT_H_
